"""Referral rules: agencies, referrals in, transfers between bodies, deadlines and timers,
and the closed loop back to the sender. No Kafka or HTTP in here: events leave through the
revision outbox (see repository.py), and every change is claimed once across replicas."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, OrganisationKind
from tiaojie.contracts.envelope import CloudEvent, EventData, derived_id, new_event
from tiaojie.contracts.intake import (
    CaseAssignmentRecorded,
    CaseEvent,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    RiskRaised,
    SessionRecorded,
)
from tiaojie.contracts.referral import AgencyDeactivated, AgencyReferralSubmitted, AgencyRegistered
from tiaojie.contracts.registry import MediatorAssigned, OrganisationUpdated
from tiaojie.referral import lifecycle
from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.lifecycle import Effect
from tiaojie.referral.metrics import MEDIATION_BODY, ReferralMetrics
from tiaojie.referral.models import AgencyDoc, CaseView, OrganisationView, ReferralDoc, Subject, TransferDoc
from tiaojie.referral.repository import ReferralRepository, VersionedStore
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import Conflict, FieldError, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import OUTBOX, OutboxRelay, outbox_fields
from tiaojie.runtime.pii import Protector

if TYPE_CHECKING:
    # Injected (app.py): the rules never talk to the broker themselves.
    from tiaojie.referral.broker import AgencyAccess, IssuedCredential

log = get_logger(__name__)

SOURCE = topics.service_source("referral")
_REFERRAL_NS = uuid.UUID("3c7e2f1a-9b4d-4c8e-a1f6-5d2b7e9c0a13")
_TRANSFER_NS = uuid.UUID("8a1d4e6f-2c3b-4f7a-9e5d-1b0c6a7f3e24")
# Applying a change retries this often when other replicas keep winning the same version.
_MAX_ATTEMPTS = 12
# Case statuses after which nothing is handed over any more.
_CASE_CLOSED = frozenset({"resolved", "failed", "withdrawn", "archived", "rejected", "followed_up"})

S = TypeVar("S", bound=Subject)


def referral_id_for(agency_id: str, agency_ref: str) -> str:
    """One referral per agency reference (their key): a resent reference is the same referral."""
    return str(uuid.uuid5(_REFERRAL_NS, f"{agency_id}\x00{agency_ref}"))


def transfer_id_for(scope: str, key: str) -> str:
    return str(uuid.uuid5(_TRANSFER_NS, f"{scope}\x00{key}"))


def _kind_label(kind: AgencyKind | str | None) -> str:
    return str(kind) if kind else MEDIATION_BODY


class ReferralService:
    """The referral rules (see the module docstring)."""

    def __init__(
        self,
        *,
        repository: ReferralRepository,
        relay: OutboxRelay,
        protector: Protector,
        divisions: Divisions,
        rules: DeadlineRules,
        settings: ReferralSettings,
        clock: Clock,
        metrics: ReferralMetrics,
        access: AgencyAccess,
    ) -> None:
        self.repo = repository
        self.relay = relay
        self.protector = protector
        self.divisions = divisions
        self.rules = rules
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.access = access
        self._cursor_known = False

    # -- agencies -----------------------------------------------------------------------
    async def register_agency(
        self, *, agency_id: str, kind: AgencyKind, county: str, name: str, source: str | None, by: str
    ) -> tuple[AgencyDoc, bool, IssuedCredential | None]:
        """Register an agency: its topics, its broker credential and ACLs, the announcement.
        The credential comes back once, to this caller; registering the same details again
        answers the agency without one (rotate to get a new password)."""
        if not self.divisions.is_county(county):
            raise Invalid(
                [FieldError("county", "unknown_county", "县级行政区划代码不存在", "no such county code")]
            )
        now = self.clock.now()
        agency = AgencyDoc(
            id=agency_id,
            kind=kind,
            county=county,
            name=name,
            source=source or f"/agencies/{agency_id}",
            registered_at=now,
            registered_by=by,
            kafka_principal=self.access.principal(agency_id, 1),
        )
        existing = await self.repo.get_agency(agency_id)
        if existing is not None:
            return await self._registered_again(existing, agency), False, None
        event = new_event(
            AgencyRegistered(agency_id=agency_id, kind=kind, county=county, name=name),
            source=SOURCE,
            subject=agency_id,
            county=county,
            id=derived_id(agency_id, "AgencyRegistered"),
            time=now,
        )
        doc = {**agency.model_dump(by_alias=True), **outbox_fields([(topics.AGENCIES, event)])}
        if not await self.repo.insert_agency(doc):
            raced = await self.repo.get_agency(agency_id)
            assert raced is not None
            return await self._registered_again(raced, agency), False, None
        credential = None
        if self.access.issues_credentials:
            credential = await self._change_credential(agency, action="issued", by=by, seq=1)
        else:
            await self.access.prepare(agency_id, kind, principal=None)
        # Announced only once its topics and access exist (a crash before this line leaves
        # the announcement to the outbox relay; registering again repairs topics and ACLs).
        await self.relay.flush(self.repo.agencies, agency_id, doc[OUTBOX], rev=1)
        log.info("agency registered", agency_id=agency_id, kind=str(kind), county=county)
        return agency, True, credential

    async def _registered_again(self, existing: AgencyDoc, wanted: AgencyDoc) -> AgencyDoc:
        same = (existing.kind, existing.county, existing.name, existing.source) == (
            wanted.kind,
            wanted.county,
            wanted.name,
            wanted.source,
        )
        if not same:
            raise Conflict("该机构编号已登记为其他机构", "this agency id is registered with other details")
        if existing.active:
            await self.access.prepare(existing.id, existing.kind, principal=existing.kafka_principal)
        return existing

    async def agency_in_scope(self, agency_id: str, counties: list[str]) -> AgencyDoc:
        """An agency of the caller's counties (404 for any other, as for none)."""
        agency = await self.repo.get_agency(agency_id)
        if agency is None or agency.county not in counties:
            raise NotFound("机构", "agency")
        return agency

    async def rotate_credential(
        self, *, agency_id: str, counties: list[str], by: str
    ) -> tuple[AgencyDoc, IssuedCredential]:
        """A new broker principal and password for an active agency: the old one stops
        working, on connections it opened too (its ACLs go)."""
        agency = await self.agency_in_scope(agency_id, counties)
        if not agency.active:
            raise Conflict("机构已停用，不能签发凭据", "the agency is deactivated: no credential is issued")
        last = await self.repo.last_credential_change(agency_id)
        if last is not None and last["action"] == "revoked":
            raise Conflict("机构已停用，不能签发凭据", "the agency is deactivated: no credential is issued")
        seq = (int(last["seq"]) if last else 0) + 1
        return agency, await self._change_credential(agency, action="rotated", by=by, seq=seq)

    async def _change_credential(
        self, agency: AgencyDoc, *, action: str, by: str, seq: int
    ) -> IssuedCredential:
        """Claim change `seq` of the agency's credential, then issue it; a concurrent change
        that claimed first (or a deactivation meanwhile) wins and this one is refused."""
        claim = {
            "_id": f"{agency.id}:{seq}",
            "agency_id": agency.id,
            "seq": seq,
            "action": action,
            "principal": self.access.principal(agency.id, seq),
            "by": by,
            "at": self.clock.now(),
        }
        if not await self.repo.claim_credential_change(claim):
            raise Conflict(
                "该机构的凭据正在被他人变更，请稍后重试",
                "another change of this credential came first; retry",
            )
        credential = await self.access.issue(agency.id, agency.kind, generation=seq)
        latest = await self.repo.last_credential_change(agency.id)
        if latest is not None and latest["seq"] > seq and latest["action"] == "revoked":
            # Deactivated while this credential was being issued: the revocation stands.
            await self.access.revoke(agency.id, generation=seq)
            raise Conflict("机构已停用，不能签发凭据", "the agency is deactivated: no credential is issued")
        await self.repo.set_agency_principal(agency.id, credential.username)
        return credential

    async def deactivate_agency(self, *, agency_id: str, counties: list[str], by: str) -> AgencyDoc:
        """Revoke the agency's credential and ACLs, mark it inactive, announce it."""
        agency = await self.agency_in_scope(agency_id, counties)
        if not agency.active:
            # Idempotent: whatever a crash left behind goes.
            last = await self.repo.last_credential_change(agency_id)
            await self.access.revoke(agency_id, generation=int(last["seq"]) if last else 1)
            return agency
        last = await self.repo.last_credential_change(agency_id)
        seq = (int(last["seq"]) if last else 0) + 1
        now = self.clock.now()
        event = new_event(
            AgencyDeactivated(agency_id=agency_id, kind=agency.kind, county=agency.county, at=now),
            source=SOURCE,
            subject=agency_id,
            county=agency.county,
            id=derived_id(agency_id, "AgencyDeactivated"),
            time=now,
        )
        claim = {
            "_id": f"{agency_id}:{seq}",
            "agency_id": agency_id,
            "seq": seq,
            "action": "revoked",
            "by": by,
            "at": now,
            **outbox_fields([(topics.AGENCIES, event)]),
        }
        if not await self.repo.claim_credential_change(claim):
            raise Conflict(
                "该机构的凭据正在被他人变更，请稍后重试",
                "another change of this credential came first; retry",
            )
        if self.access.issues_credentials:
            await self.access.revoke(agency_id, generation=seq)
        await self.repo.deactivate_agency(agency_id)
        await self.relay.flush(self.repo.agency_credentials, claim["_id"], claim[OUTBOX], rev=1)
        log.info("agency deactivated", agency_id=agency_id, county=agency.county)
        return agency.model_copy(update={"active": False})

    async def flush_rejection(self, rejection_id: str) -> None:
        """Publish a rejection notice a crash left unpublished (redelivered record)."""
        outbox = await self.repo.rejection_outbox(rejection_id)
        if outbox:
            await self.relay.flush(self.repo.rejections, rejection_id, outbox)

    # -- referrals in -------------------------------------------------------------------
    async def receive(
        self, *, agency: AgencyDoc, data: AgencyReferralSubmitted, event_id: str | None
    ) -> tuple[ReferralDoc, bool]:
        """A referral from an agency (Kafka or HTTP): validated, routed, its clock started."""
        referral_id = referral_id_for(agency.id, data.agency_ref)
        existing = await self.repo.referrals.load(referral_id)
        if existing is not None:
            doc = ReferralDoc.model_validate(existing)
            await self._flush_latest(self.repo.referrals, doc)
            return doc, False
        submission = data.submission
        errors = self._submission_errors(data)
        organisation = await self._receiving_body(data, errors)
        if errors:
            raise Invalid(errors)
        assert organisation is not None
        now = self.clock.now()
        doc = ReferralDoc(
            id=referral_id,
            status=lifecycle.REQUESTED,
            county=submission.county,
            organisation_id=organisation.id,
            clock_kind=data.referral_kind,
            response_due=now,
            agency_id=agency.id,
            agency_kind=agency.kind,
            agency_ref=data.agency_ref,
            referral_kind=data.referral_kind,
            township=submission.township,
            category=submission.category,
            parties_count=len(submission.applicants) + len(submission.respondents),
            submission_enc=self.protector.encrypt(orjson.dumps(submission.model_dump(mode="json")).decode()),
            linked_case_id=data.case_id,
            note=data.note,
            requested_at=now,
            source_event_id=event_id,
        )
        effects = lifecycle.received(doc, self.rules, now=now)
        committed = await self._commit_new(self.repo.referrals, doc, effects)
        if committed:
            self.metrics.referrals.labels(_kind_label(agency.kind), doc.county, "received").inc()
            return doc, True
        raced = await self.repo.referrals.load(referral_id)
        assert raced is not None
        return ReferralDoc.model_validate(raced), False

    def _submission_errors(self, data: AgencyReferralSubmitted) -> list[FieldError]:
        submission = data.submission
        errors: list[FieldError] = []
        if not self.divisions.is_county(submission.county):
            errors.append(
                FieldError(
                    "submission.county", "unknown_county", "县级行政区划代码不存在", "no such county code"
                )
            )
        elif submission.township and self.divisions.county_of(submission.township) != submission.county:
            errors.append(
                FieldError(
                    "submission.township",
                    "township_outside_county",
                    "乡镇（街道）不属于所选县区",
                    "township is not in the given county",
                )
            )
        return errors

    async def _receiving_body(
        self, data: AgencyReferralSubmitted, errors: list[FieldError]
    ) -> OrganisationView | None:
        """The named body if valid, else the township committee, else the county centre."""
        county, township = data.submission.county, data.submission.township
        if data.organisation_id:
            named = await self.repo.get_organisation(data.organisation_id)
            if named is None or not named.active or named.county != county:
                errors.append(
                    FieldError(
                        "organisation_id",
                        "unknown_organisation",
                        "接收的调解组织不存在或不在该县区",
                        "no such active organisation in this county",
                    )
                )
            return named
        in_county = [o for o in await self.repo.organisations_in(county) if o.active]
        if township:
            local = [
                o
                for o in in_county
                if o.division_code == township[:9] and o.kind == OrganisationKind.TOWNSHIP_COMMITTEE
            ]
            if local:
                return min(local, key=lambda o: o.id)
        centre = self._county_centre(in_county)
        if centre is None and not errors:
            errors.append(
                FieldError(
                    "submission.county",
                    "no_receiving_body",
                    "该县区尚无可接收的调解组织",
                    "no mediation body in this county can receive referrals yet",
                )
            )
        return centre

    @staticmethod
    def _county_centre(organisations: list[OrganisationView]) -> OrganisationView | None:
        centres = [
            o for o in organisations if o.kind == OrganisationKind.CENTRE and o.level == "county" and o.active
        ]
        return min(centres, key=lambda o: o.id) if centres else None

    # -- referral answers -----------------------------------------------------------------
    async def get_referral(self, referral_id: str) -> ReferralDoc | None:
        raw = await self.repo.referrals.load(referral_id)
        return ReferralDoc.model_validate(raw) if raw else None

    async def referral_for(
        self, referral_id: str, *, counties: list[str] | None, agency_id: str | None
    ) -> ReferralDoc:
        """A referral the caller may see: their agency's, or their counties' (else 404)."""
        doc = await self.get_referral(referral_id)
        if doc is None:
            raise NotFound("移交", "referral")
        if agency_id is not None:
            if doc.agency_id != agency_id:
                raise NotFound("移交", "referral")
        elif counties is None or doc.county not in counties:
            raise NotFound("移交", "referral")
        return doc

    async def accept_referral(
        self, *, referral_id: str, by: str, counties: list[str], organisation_id: str | None = None
    ) -> ReferralDoc:
        """The receiving body accepts the referral (intake opens the case)."""
        if organisation_id:
            org = await self.repo.get_organisation(organisation_id)
            if org is None or not org.active or org.county not in counties:
                raise Invalid(
                    [
                        FieldError(
                            "organisation_id",
                            "unknown_organisation",
                            "调解组织不存在",
                            "no such organisation",
                        )
                    ]
                )
        now = self.clock.now()
        doc, effects = await self._apply(
            "referral",
            referral_id,
            lambda d: lifecycle.accept(d, self.rules, by=by, organisation_id=organisation_id, now=now),
            visible=lambda d: d.county in counties,
        )
        assert isinstance(doc, ReferralDoc)
        if effects is not None:
            self._answered(doc, "accepted")
        return doc

    async def decline_referral(
        self, *, referral_id: str, by: str, counties: list[str], reason: str
    ) -> ReferralDoc:
        """The receiving body declines with a reason (returned to the sender)."""
        now = self.clock.now()
        doc, effects = await self._apply(
            "referral",
            referral_id,
            lambda d: lifecycle.decline(d, by=by, reason=reason, now=now),
            visible=lambda d: d.county in counties,
        )
        assert isinstance(doc, ReferralDoc)
        if effects is not None:
            self._answered(doc, "declined")
        return doc

    def _answered(self, doc: ReferralDoc, outcome: str) -> None:
        kind = _kind_label(doc.agency_kind)
        self.metrics.referrals.labels(kind, doc.county, outcome).inc()
        if doc.answered_at:
            self.metrics.response_seconds.labels(kind).observe(
                (doc.answered_at - doc.requested_at).total_seconds()
            )

    async def extend(
        self,
        *,
        subject_kind: str,
        subject_id: str,
        by: str,
        counties: list[str],
        days: int,
        by_agreement: bool,
        reason: str,
    ) -> Subject:
        """Extend a handling deadline (delegation and 交办 by agreement; petition once)."""
        if subject_kind == "referral":
            await self.referral_for(subject_id, counties=counties, agency_id=None)
        else:
            await self.transfer_for(subject_id, counties=counties)
        now = self.clock.now()
        doc, _ = await self._apply(
            subject_kind,
            subject_id,
            lambda d: lifecycle.extend(
                d, self.rules, days=days, by_agreement=by_agreement, reason=reason, by=by, now=now
            ),
        )
        return doc

    # -- what other services tell us --------------------------------------------------------
    async def project_organisation(self, *, event: OrganisationUpdated) -> None:
        fields = event.model_dump(mode="json", exclude={"organisation_id", "version"})
        await self.repo.upsert_organisation(
            organisation_id=event.organisation_id, version=event.version, fields=fields
        )

    async def on_case_registered(self, *, data: CaseRegistered) -> None:
        """Project the case; a case opened for a referral closes the first half of the loop."""
        previous = await self.repo.get_case_raw(data.case_id)
        fields: dict[str, Any] = {
            "county": data.county,
            "township": data.township,
            "category": str(data.category),
            "organisation_id": data.organisation_id,
            "risk_level": str(data.risk_level),
            "party_keys": data.party_keys,
            "referral_id": data.referral_id,
            "at": data.received_at,
        }
        if previous is None or previous.get("status") is None:
            fields["status"] = "received"
        await self.repo.save_case(data.case_id, fields)
        if not data.referral_id:
            return
        now = self.clock.now()
        await self._apply_if_exists(
            "referral",
            data.referral_id,
            lambda d: lifecycle.case_opened(
                d, case_id=data.case_id, organisation_id=data.organisation_id, now=now
            ),
        )
        # The registry's assignment (another topic) may have overtaken the registration:
        # each side writes its fact, then reads the other's, so one of them sees both.
        assignment = await self.repo.assignment_of(data.case_id)
        if assignment is not None:
            await self._mediation_started(data.case_id, assignment.get("organisation_id"), [data.referral_id])

    async def on_case_event(self, *, data: CaseEvent) -> None:
        """Keep the case projection; close the loop when a referred case ends."""
        fields: dict[str, Any] = {
            "county": data.county,
            "status": str(data.status),
            "organisation_id": data.organisation_id,
            "at": data.at,
        }
        if data.category:
            fields["category"] = str(data.category)
        if data.referral_id:
            fields["referral_id"] = data.referral_id
        if isinstance(data, RiskRaised):
            fields["risk_level"] = str(data.risk_level)
        await self.repo.save_case(data.case_id, fields)
        referral_ids = (
            [data.referral_id] if data.referral_id else await self.repo.referral_ids_for_case(data.case_id)
        )
        now = self.clock.now()
        if isinstance(data, CaseAssignmentRecorded | SessionRecorded):
            await self._mediation_started(data.case_id, data.organisation_id, referral_ids)
        elif isinstance(data, CaseTransferred):
            for rid in referral_ids:
                await self._apply_if_exists(
                    "referral",
                    rid,
                    lambda d: lifecycle.moved(
                        d,
                        organisation_id=data.organisation_id,
                        transfer_id=data.transfer_id,
                        kind=data.kind,
                        now=now,
                    ),
                )
        elif isinstance(data, CaseResolved | CaseFailed | CaseWithdrawn | CaseRejected):
            outcome, extra = self._outcome_of(data)
            for rid in referral_ids:
                doc, effects = await self._apply_if_exists(
                    "referral",
                    rid,
                    lambda d: lifecycle.closed(d, outcome=outcome, case_id=data.case_id, now=now, **extra),
                )
                if effects is not None and isinstance(doc, ReferralDoc):
                    self.metrics.referrals.labels(_kind_label(doc.agency_kind), doc.county, outcome).inc()
            for tid in await self.repo.transfer_ids_for_case(data.case_id):
                doc, effects = await self._apply_if_exists(
                    "transfer", tid, lambda d: lifecycle.transfer_case_closed(d, outcome=outcome, now=now)
                )
                if effects is not None and isinstance(doc, TransferDoc):
                    self.metrics.transfers.labels(doc.county, doc.kind, "completed").inc()

    @staticmethod
    def _outcome_of(data: CaseEvent) -> tuple[str, dict[str, str]]:
        if isinstance(data, CaseResolved):
            return lifecycle.RESOLVED, {"agreement_summary": data.agreement_summary}
        if isinstance(data, CaseFailed):
            return lifecycle.FAILED, {"route": data.route, "reason": data.reason}
        if isinstance(data, CaseRejected):
            # 不予受理 of a referred dispute: for the sender it did not get mediated.
            return lifecycle.FAILED, {"route": "rejected", "reason": data.reason_code}
        return lifecycle.WITHDRAWN, {}

    async def on_mediator_assigned(self, *, data: MediatorAssigned) -> None:
        """A mediator for a referred case: mediation is under way (told to the sender)."""
        await self.repo.record_assignment(data.case_id, data.organisation_id)
        referral_ids = await self.repo.referral_ids_for_case(data.case_id)
        await self._mediation_started(data.case_id, data.organisation_id, referral_ids)

    async def _mediation_started(
        self, case_id: str, organisation_id: str | None, referral_ids: list[str]
    ) -> None:
        now = self.clock.now()
        for rid in referral_ids:
            await self._apply_if_exists(
                "referral",
                rid,
                lambda d: lifecycle.mediation_started(
                    d, case_id=case_id, organisation_id=organisation_id, now=now
                ),
            )

    # -- transfers ----------------------------------------------------------------------
    async def request_transfer(
        self,
        *,
        case_id: str,
        kind: str,
        to_organisation_id: str,
        reason: str,
        reason_code: str,
        due_days: int | None,
        by: str,
        counties: list[str],
        key: str | None,
    ) -> tuple[TransferDoc, bool]:
        """转办 / 交办 / 上报 a case to another body, validated against what we know of both."""
        case = await self.repo.get_case(case_id)
        if case is None or case.county not in counties:
            raise NotFound("案件", "case")
        if case.status in _CASE_CLOSED:
            raise Conflict("案件已结束，不能再转交", "the case has ended and cannot be handed over")
        target = await self.repo.get_organisation(to_organisation_id)
        errors = await self._transfer_errors(case, kind, target, reason_code, due_days)
        if errors:
            raise Invalid(errors)
        assert target is not None
        transfer_id = transfer_id_for(by, key) if key else str(uuid.uuid4())
        existing = await self.repo.transfers.load(transfer_id)
        if existing is not None:
            return TransferDoc.model_validate(existing), False
        for other in await self.repo.transfer_ids_for_case(case_id):
            pending = await self.repo.transfers.load(other)
            if pending and pending["status"] == lifecycle.REQUESTED:
                raise Conflict(
                    "该案件已有待接收的转交", "this case already has a transfer awaiting an answer"
                )
        now = self.clock.now()
        doc = TransferDoc(
            id=transfer_id,
            status=lifecycle.REQUESTED,
            county=case.county,
            organisation_id=case.organisation_id,
            clock_kind="mediation",
            response_due=now,
            case_id=case_id,
            kind=kind,
            reason_code=reason_code,
            reason=reason,
            from_organisation_id=case.organisation_id,
            to_organisation_id=target.id,
            to_county=target.county,
            requested_by=by,
            requested_at=now,
            due_days=due_days,
        )
        effects = lifecycle.transfer_requested(doc, self.rules, now=now)
        if not await self._commit_new(self.repo.transfers, doc, effects):
            raced = await self.repo.transfers.load(transfer_id)
            assert raced is not None
            return TransferDoc.model_validate(raced), False
        self.metrics.transfers.labels(doc.county, kind, "requested").inc()
        if kind == "escalate_up":
            self.metrics.escalations.labels(doc.county, reason_code).inc()
        return doc, True

    async def _transfer_errors(
        self,
        case: CaseView,
        kind: str,
        target: OrganisationView | None,
        reason_code: str,
        due_days: int | None,
    ) -> list[FieldError]:
        if target is None or not target.active:
            return [
                FieldError(
                    "to_organisation_id",
                    "unknown_organisation",
                    "接收的调解组织不存在",
                    "no such active organisation",
                )
            ]
        if target.id == case.organisation_id:
            return [
                FieldError(
                    "to_organisation_id",
                    "same_organisation",
                    "案件已在该调解组织",
                    "the case is already with this organisation",
                )
            ]
        errors: list[FieldError] = []
        holder = case.organisation_id
        if kind == "assign_down":
            if holder is None or holder not in await self._ancestors(target.id):
                errors.append(
                    FieldError(
                        "to_organisation_id",
                        "not_subordinate",
                        "交办只能交给下级调解组织",
                        "交办 goes only to a body below the one holding the case",
                    )
                )
        elif kind == "escalate_up":
            if holder is None or target.id not in await self._ancestors(holder):
                errors.append(
                    FieldError(
                        "to_organisation_id",
                        "not_superior",
                        "上报只能报给上级调解组织",
                        "上报 goes only to a body above the one holding the case",
                    )
                )
            if reason_code not in ("grave", "cross_county"):
                errors.append(
                    FieldError(
                        "reason_code",
                        "escalation_reason",
                        "上报须说明原因：重大（grave）或跨县区（cross_county）",
                        "上报 needs a reason code: grave or cross_county",
                    )
                )
            elif reason_code == "grave" and case.risk_level != "grave":
                errors.append(
                    FieldError(
                        "reason_code",
                        "not_grave",
                        "该案件未被评为重大风险",
                        "the case is not rated grave",
                    )
                )
        if due_days is not None and kind != "assign_down":
            errors.append(
                FieldError(
                    "due_days",
                    "due_only_for_assign_down",
                    "只有交办可设办理期限",
                    "only 交办 carries a deadline",
                )
            )
        return errors

    async def _ancestors(self, organisation_id: str) -> list[str]:
        """Parents of an organisation up the hierarchy (nearest first)."""
        found: list[str] = []
        current = await self.repo.get_organisation(organisation_id)
        while (
            current is not None and current.parent_id and current.parent_id not in found and len(found) < 10
        ):
            found.append(current.parent_id)
            current = await self.repo.get_organisation(current.parent_id)
        return found

    async def transfer_for(self, transfer_id: str, *, counties: list[str]) -> TransferDoc:
        raw = await self.repo.transfers.load(transfer_id)
        doc = TransferDoc.model_validate(raw) if raw else None
        if doc is None or (doc.county not in counties and doc.to_county not in counties):
            raise NotFound("转交", "transfer")
        return doc

    async def accept_transfer(self, *, transfer_id: str, by: str, counties: list[str]) -> TransferDoc:
        """The receiving body takes the case (intake moves it, the registry reassigns)."""
        current = await self.transfer_for(transfer_id, counties=counties)
        if current.to_county not in counties:
            raise NotFound("转交", "transfer")
        case = await self.repo.get_case(current.case_id)
        now = self.clock.now()
        doc, effects = await self._apply(
            "transfer",
            transfer_id,
            lambda d: lifecycle.transfer_accepted(d, self.rules, by=by, case=case, now=now),
        )
        assert isinstance(doc, TransferDoc)
        if effects is not None:
            self.metrics.transfers.labels(doc.county, current.kind, "accepted").inc()
        return doc

    async def decline_transfer(
        self, *, transfer_id: str, by: str, counties: list[str], reason: str
    ) -> TransferDoc:
        """The receiving body declines: the case stays, the sender sees why."""
        current = await self.transfer_for(transfer_id, counties=counties)
        if current.to_county not in counties:
            raise NotFound("转交", "transfer")
        now = self.clock.now()
        doc, effects = await self._apply(
            "transfer",
            transfer_id,
            lambda d: lifecycle.transfer_declined(d, by=by, reason=reason, now=now),
        )
        assert isinstance(doc, TransferDoc)
        if effects is not None:
            self.metrics.transfers.labels(doc.county, current.kind, "declined").inc()
        return doc

    async def hops(self, *, case_id: str, counties: list[str]) -> tuple[list[ReferralDoc], list[TransferDoc]]:
        """Every hand-over of a case: where it came from, and each transfer since."""
        case = await self.repo.get_case(case_id)
        if case is None or case.county not in counties:
            raise NotFound("案件", "case")
        referrals = [
            r for rid in await self.repo.referral_ids_for_case(case_id) if (r := await self.get_referral(rid))
        ]
        transfers = []
        for tid in await self.repo.transfer_ids_for_case(case_id):
            raw = await self.repo.transfers.load(tid)
            if raw:
                transfers.append(TransferDoc.model_validate(raw))
        return referrals, sorted(transfers, key=lambda t: t.requested_at)

    # -- timers -------------------------------------------------------------------------
    async def sweep(self) -> int:
        """Fire every due timer (each exactly once across replicas); returns how many fired here."""
        now = self.clock.now()
        today = now.astimezone(UTC).date()
        cursor = await self.repo.sweep_cursor() or today
        day = min(cursor, today) - timedelta(days=2)  # late schedulers near midnight
        fired = 0
        leftover: date | None = None
        while day <= today:
            due_today = await self.repo.timers_on(day)
            # Replicas sweep the same list: in different orders they rarely collide.
            random.shuffle(due_today)
            for timer in due_today:
                if timer["at"] > now:
                    leftover = leftover or day
                    continue
                try:
                    fired += await self._fire(timer, now)
                except NotFound:
                    await self.repo.unschedule(
                        subject_kind=timer["subject_kind"], subject_id=timer["subject_id"], key=timer["key"]
                    )
                except Exception as exc:
                    # One timer that cannot fire now must not hold up the others.
                    log.warning("timer failed", key=timer["key"], error=type(exc).__name__)
                    leftover = min(leftover or day, day)
            day += timedelta(days=1)
        await self.repo.set_sweep_cursor(leftover or today)
        return fired

    async def _fire(self, timer: dict[str, Any], now: datetime) -> int:
        kind, subject_id, key = timer["subject_kind"], timer["subject_id"], timer["key"]
        escalate_to: list[str] = []
        if key.endswith("overdue"):
            current = await self._load(kind, subject_id)
            if current is None:
                raise NotFound()
            escalate_to = await self._escalation_targets(current, key)
        doc, effects = await self._apply(
            kind, subject_id, lambda d: lifecycle.fire(d, key, now=now, escalate_to=escalate_to)
        )
        if effects is None:
            # Fired elsewhere, cancelled, or moved later: make the index say so.
            await self._sync_timers(kind, doc, before_commit=True)
            await self._sync_timers(kind, doc, before_commit=False)
            return 0
        action = doc.timers[key].action
        self.metrics.timers_fired.labels(action).inc()
        if action == "overdue":
            self.metrics.escalations.labels(doc.county, f"overdue_{doc.timers[key].stage}").inc()
        return 1

    async def _escalation_targets(self, doc: Subject, key: str) -> list[str]:
        """Overdue goes to the parent body and the county centre (and, for a transfer, the
        body that sent it: 交办 is supervised by the body that assigned it)."""
        if not key.endswith("overdue"):
            return []
        targets: list[str] = []
        if isinstance(doc, TransferDoc) and doc.from_organisation_id:
            targets.append(doc.from_organisation_id)
        holder = doc.to_organisation_id if isinstance(doc, TransferDoc) else doc.organisation_id
        if holder:
            parents = await self._ancestors(holder)
            targets += parents[:1]
        centre = self._county_centre(await self.repo.organisations_in(doc.county))
        if centre:
            targets.append(centre.id)
        return [t for t in dict.fromkeys(targets) if t != holder]

    async def refresh_overdue(self) -> None:
        """Recompute the overdue gauge from the database."""
        counts: dict[tuple[str, str], int] = {}
        for row in await self.repo.overdue_counts():
            labels = (row["_id"]["county"], _kind_label(row["_id"].get("agency_kind")))
            counts[labels] = counts.get(labels, 0) + int(row["n"])
        self.metrics.set_overdue(counts)

    async def run_timers(self) -> None:
        """The timer loop of one replica (cancelled at shutdown)."""
        import asyncio

        while True:
            try:
                await self.sweep()
                await self.refresh_overdue()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer sweep failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.timer_interval)

    # -- applying changes ------------------------------------------------------------------
    def _store(self, kind: str) -> tuple[VersionedStore, type[Subject]]:
        if kind == "referral":
            return self.repo.referrals, ReferralDoc
        return self.repo.transfers, TransferDoc

    async def _load(self, kind: str, subject_id: str) -> Subject | None:
        store, model = self._store(kind)
        raw = await store.load(subject_id)
        return model.model_validate(raw) if raw else None

    async def _apply_if_exists(
        self, kind: str, subject_id: str, change: Callable[[Any], list[Effect] | None]
    ) -> tuple[Subject | None, list[Effect] | None]:
        try:
            return await self._apply(kind, subject_id, change)
        except NotFound:
            return None, None  # a referral of another deployment: nothing of ours

    async def _apply(
        self,
        kind: str,
        subject_id: str,
        change: Callable[[Any], list[Effect] | None],
        *,
        visible: Callable[[Any], bool] | None = None,
    ) -> tuple[Subject, list[Effect] | None]:
        """Load, change, and claim the next version; retried when another replica won it.
        Returns the state and the effects (None when the change was already made).
        `visible` hides the subject from a caller outside its scope (404, as if absent)."""
        store, model = self._store(kind)
        for _ in range(_MAX_ATTEMPTS):
            raw = await store.load(subject_id)
            if raw is None or (visible is not None and not visible(model.model_validate(raw))):
                raise NotFound("移交" if kind == "referral" else "转交", kind)
            doc = model.model_validate(raw)
            pending_before = {k: t.at for k, t in doc.timers.items() if t.state == "pending"}
            effects = change(doc)
            if effects is None:
                # Already done (a retry, a redelivery, or another replica won): its events
                # left with that change, or the relay's sweep publishes them.
                return doc, None
            doc.version += 1
            if await self._commit(kind, store, doc, effects, pending_before=pending_before):
                return doc, effects
        raise Conflict("操作冲突，请稍后重试", "too many concurrent changes; try again")

    async def _commit_new(self, store: VersionedStore, doc: Subject, effects: list[Effect]) -> bool:
        doc.version = 1
        kind = "referral" if isinstance(doc, ReferralDoc) else "transfer"
        return await self._commit(kind, store, doc, effects)

    async def _commit(
        self,
        kind: str,
        store: VersionedStore,
        doc: Subject,
        effects: list[Effect],
        *,
        pending_before: dict[str, datetime] | None = None,
    ) -> bool:
        now = self.clock.now()
        events = [(e.topic, self._envelope(doc, i, e, now)) for i, e in enumerate(effects)]
        # Timers are indexed before the claim: a crash after it cannot lose one (a stale
        # index entry is harmless: firing re-checks the state).
        await self._sync_timers(kind, doc, before_commit=True, pending_before=pending_before)
        if not await store.commit(doc.to_mongo(), events, at=now):
            return False
        await self._sync_timers(kind, doc, before_commit=False, pending_before=pending_before)
        outbox = outbox_fields(events)[OUTBOX]
        await self.relay.flush(store.revisions, f"{doc.id}#{doc.version}", outbox, rev=1)
        return True

    def _envelope(self, doc: Subject, index: int, effect: Effect, now: datetime) -> CloudEvent:
        data: EventData = effect.data
        return new_event(
            data,
            source=SOURCE,
            subject=effect.key,
            county=doc.county,
            id=derived_id(f"{doc.id}#{doc.version}", f"{index}:{data.event_type}"),
            time=now,
        )

    async def _flush_latest(self, store: VersionedStore, doc: Subject) -> None:
        """Publish what a crash may have left in the latest revision's outbox (stable ids)."""
        outbox = await store.revision_outbox(doc.id, doc.version)
        if outbox:
            await self.relay.flush(store.revisions, f"{doc.id}#{doc.version}", outbox)

    async def _sync_timers(
        self,
        kind: str,
        doc: Subject,
        *,
        before_commit: bool,
        pending_before: dict[str, datetime] | None = None,
    ) -> None:
        """Index pending timers under their day and drop the others, touching only timers
        this change affected when `pending_before` (the pending timers it started from) is given."""
        today = self.clock.now().astimezone(UTC).date()
        for key, timer in doc.timers.items():
            if pending_before is not None:
                was = pending_before.get(key)
                unchanged = was == timer.at if timer.state == "pending" else was is None
                if unchanged:
                    continue
            if timer.state == "pending":
                if before_commit:
                    slot = max(timer.at.astimezone(UTC).date(), today)
                    await self._ensure_cursor(slot)
                    await self.repo.schedule(
                        subject_kind=kind, subject_id=doc.id, key=key, at=timer.at, slot=slot
                    )
            elif not before_commit:
                await self.repo.unschedule(subject_kind=kind, subject_id=doc.id, key=key)

    async def _ensure_cursor(self, slot: date) -> None:
        if self._cursor_known:
            return
        if await self.repo.sweep_cursor() is None:
            await self.repo.set_sweep_cursor(slot)
        self._cursor_known = True
