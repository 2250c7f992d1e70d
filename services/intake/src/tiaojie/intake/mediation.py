"""The desk's and the mediator's actions on a case: inputs checked, the pure rule of
`actions` applied once through the storage engine."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial

from tiaojie.contracts.common import Category
from tiaojie.contracts.intake import NominatedContent, NominatedSession
from tiaojie.intake import actions
from tiaojie.intake.models import CaseDoc
from tiaojie.intake.repository import Scope
from tiaojie.intake.transitions import Build, IntakeCore
from tiaojie.runtime.pii import scrub


class Mediating(IntakeCore):
    async def _act(
        self, case_id: str, action: str, *, action_id: str, by: str, build: Build, scope: Scope | None
    ) -> CaseDoc:
        """Apply one action's rule once; the case as it is afterwards."""
        return (
            await self._apply(case_id, action=action, action_id=action_id, by=by, build=build, scope=scope)
        ).case

    async def reject(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        reason_code: str,
        reason_text: str = "",
        scope: Scope | None = None,
    ) -> CaseDoc:
        """不予受理, with a reason from the fixed list."""
        actions.check_rejection(reason_code)
        build = partial(
            actions.reject, by=by, reason_code=reason_code, reason_text=scrub(reason_text.strip())
        )
        return await self._act(case_id, "reject", action_id=action_id, by=by, build=build, scope=scope)

    async def record_session(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        held_at: datetime,
        place: str,
        participants: list[str],
        record: str,
    ) -> CaseDoc:
        """A mediation session; the first one moves the case into mediation."""
        build = partial(
            actions.record_session,
            by=by,
            action_id=action_id,
            held_at=held_at,
            place=place,
            participants=participants,
            record=record,
        )
        return await self._act(
            case_id, "record_session", action_id=action_id, by=by, build=build, scope=scope
        )

    async def resolve(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        form: str,
        amount: float | None,
        performance_due: date | None,
        summary: str,
        text: str,
        judicial_confirmation: bool,
    ) -> CaseDoc:
        """调解成功: an oral or written agreement."""
        today = self.today()
        actions.check_agreement(
            form=form,
            text=text,
            judicial_confirmation=judicial_confirmation,
            performance_due=performance_due,
            today=today,
        )
        due = (
            today + timedelta(days=self.settings.judicial_confirmation_days)
            if judicial_confirmation
            else None
        )
        build = partial(
            actions.resolve,
            by=by,
            form=form,
            amount=amount,
            performance_due=performance_due,
            summary=scrub(summary.strip()),
            text=text,
            confirmation_due=due,
        )
        return await self._act(case_id, "resolve", action_id=action_id, by=by, build=build, scope=scope)

    async def fail(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, route: str, reason: str
    ) -> CaseDoc:
        """调解不成, with the route the parties are guided to."""
        actions.check_failure(route)
        build = partial(actions.fail, by=by, route=route, reason=scrub(reason.strip()))
        return await self._act(case_id, "fail", action_id=action_id, by=by, build=build, scope=scope)

    async def record_performance(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, performed_on: date, note: str
    ) -> CaseDoc:
        """Proof that the agreement was performed."""
        actions.check_not_ahead(
            "performed_on",
            performed_on,
            today=self.today(),
            zh="履行日期不能晚于今天",
            en="performance cannot be recorded ahead",
        )
        build = partial(actions.record_performance, by=by, performed_on=performed_on, note=note)
        return await self._act(
            case_id, "record_performance", action_id=action_id, by=by, build=build, scope=scope
        )

    async def follow_up(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        visited_on: date,
        method: str,
        satisfied: bool | None,
        record: str,
    ) -> CaseDoc:
        """回访."""
        actions.check_follow_up(method)
        actions.check_not_ahead(
            "visited_on",
            visited_on,
            today=self.today(),
            zh="回访日期不能晚于今天",
            en="a visit cannot be recorded ahead",
        )
        build = partial(
            actions.follow_up, by=by, visited_on=visited_on, method=method, satisfied=satisfied, record=record
        )
        return await self._act(case_id, "follow_up", action_id=action_id, by=by, build=build, scope=scope)

    async def archive(self, *, case_id: str, by: str, action_id: str, scope: Scope | None) -> CaseDoc:
        """归档: only a complete file is closed."""
        return await self._act(
            case_id, "archive", action_id=action_id, by=by, build=actions.archive, scope=scope
        )

    async def withdraw(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, reason: str
    ) -> CaseDoc:
        """The applicant withdrew, at any open stage."""
        build = partial(actions.withdraw, reason=scrub(reason.strip()))
        return await self._act(case_id, "withdraw", action_id=action_id, by=by, build=build, scope=scope)

    async def add_document(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        part: str,
        title: str,
        uri: str,
        media_type: str | None,
        sha256: str | None,
        pages: int | None,
    ) -> CaseDoc:
        """Metadata of a document of the file (the content stays where `uri` points)."""
        actions.check_part(part)
        build = partial(
            actions.add_document,
            by=by,
            action_id=action_id,
            part=part,
            title=title,
            uri=uri,
            media_type=media_type,
            sha256=sha256,
            pages=pages,
        )
        return await self._act(case_id, "add_document", action_id=action_id, by=by, build=build, scope=scope)

    async def set_category(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, category: Category
    ) -> CaseDoc:
        """A desk user overrides the category; later events carry the new one."""
        build = partial(actions.set_category, category=category)
        return await self._act(case_id, "set_category", action_id=action_id, by=by, build=build, scope=scope)

    async def nominate(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, note: str
    ) -> CaseDoc:
        """Offer a closed case to the typical-case library (CaseNominated on
        intake.nominations.v1): its texts travel encrypted, for the library to anonymise."""

        def sealed(case: CaseDoc) -> str:
            return self.protector.encrypt(self._nominated_content(case).model_dump_json())

        build = partial(actions.nominate, by=by, note=note, content=sealed)
        return await self._act(case_id, "nominate", action_id=action_id, by=by, build=build, scope=scope)

    def _nominated_content(self, case: CaseDoc) -> NominatedContent:
        return NominatedContent(
            description=case.description,
            parties=[{"role": p.role, "name": self.protector.decrypt(p.name_enc)} for p in case.parties],
            sessions=[
                NominatedSession(
                    held_at=s.held_at, place=s.place, participants="、".join(s.participants), record=s.record
                )
                for s in case.sessions
            ],
            agreement_text=case.agreement.text if case.agreement else "",
            failure_reason=case.failure.reason if case.failure else "",
            follow_up_record=case.follow_up.record if case.follow_up else "",
        )

    # -- the mediation clock -------------------------------------------------------------------
    async def pause_clock(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, reason: str
    ) -> CaseDoc:
        """Stop the mediation clock (e.g. awaiting an appraisal), with the reason logged."""
        build = partial(actions.pause_clock, reason=reason)
        return await self._act(case_id, "pause_clock", action_id=action_id, by=by, build=build, scope=scope)

    async def resume_clock(self, *, case_id: str, by: str, action_id: str, scope: Scope | None) -> CaseDoc:
        """Restart a paused clock; the time it stood still is added to the deadline."""
        return await self._act(
            case_id, "resume_clock", action_id=action_id, by=by, build=actions.resume_clock, scope=scope
        )

    async def extend_clock(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        days: int,
        applicant_consent: bool,
        respondent_consent: bool,
        consent_record: str,
    ) -> CaseDoc:
        """Extend the mediation clock once, with both parties' recorded consent."""
        actions.check_extension(
            days=days,
            max_days=self.settings.max_extension_days,
            applicant_consent=applicant_consent,
            respondent_consent=respondent_consent,
            consent_record=consent_record,
        )
        build = partial(actions.extend_clock, by=by, days=days, consent_record=consent_record)
        return await self._act(case_id, "extend_clock", action_id=action_id, by=by, build=build, scope=scope)
