"""Referrals in: what an agency sends (Kafka or HTTP) becomes a referral to the body that
receives it, whose staff accept or decline it; each step is told to the agency."""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson

from tiaojie.contracts.referral import AgencyReferralSubmitted
from tiaojie.referral import lifecycle
from tiaojie.referral.core import ReferralCore, kind_label, within
from tiaojie.referral.models import AgencyDoc, ReferralDoc
from tiaojie.referral.routing import receiving_body, submission_errors
from tiaojie.runtime.directory import Organisation
from tiaojie.runtime.errors import FieldError, Invalid, NotFound
from tiaojie.runtime.pii import Protector

_REFERRAL_NS = uuid.UUID("3c7e2f1a-9b4d-4c8e-a1f6-5d2b7e9c0a13")


def referral_id_for(agency_id: str, agency_ref: str) -> str:
    """One referral per agency reference (their key): a resent reference is the same referral."""
    return str(uuid.uuid5(_REFERRAL_NS, f"{agency_id}\x00{agency_ref}"))


def new_referral(
    *,
    agency: AgencyDoc,
    data: AgencyReferralSubmitted,
    organisation: Organisation,
    protector: Protector,
    event_id: str | None,
    now: datetime,
) -> ReferralDoc:
    """A referral as it arrives, the submission sealed (personal data never in clear)."""
    submission = data.submission
    return ReferralDoc(
        id=referral_id_for(agency.id, data.agency_ref),
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
        submission_enc=protector.encrypt(orjson.dumps(submission.model_dump(mode="json")).decode()),
        linked_case_id=data.case_id,
        note=data.note,
        requested_at=now,
        source_event_id=event_id,
    )


class ReferralRules(ReferralCore):
    """Receiving referrals and answering them."""

    async def receive(
        self, *, agency: AgencyDoc, data: AgencyReferralSubmitted, event_id: str | None
    ) -> tuple[ReferralDoc, bool]:
        """A referral from an agency (Kafka or HTTP): validated, routed, its clock started."""
        referral_id = referral_id_for(agency.id, data.agency_ref)
        existing = await self.referrals.get(referral_id)
        if existing is not None:
            return existing, False
        errors = submission_errors(data, self.divisions)
        named = await self.hierarchy.get(data.organisation_id) if data.organisation_id else None
        organisation, unroutable = receiving_body(
            data,
            named=named,
            in_county=[] if data.organisation_id else await self.hierarchy.in_county(data.submission.county),
            report_missing=not errors,
        )
        if errors or unroutable:
            raise Invalid(errors + unroutable)
        assert organisation is not None
        now = self.clock.now()
        doc = new_referral(
            agency=agency,
            data=data,
            organisation=organisation,
            protector=self.protector,
            event_id=event_id,
            now=now,
        )
        effects = lifecycle.received(doc, self.rules, now=now)
        if await self.referrals.create(doc, effects, now=now):
            self.metrics.referrals.labels(kind_label(agency.kind), doc.county, "received").inc()
            return doc, True
        raced = await self.referrals.get(referral_id)
        assert raced is not None  # the winner's snapshot was rolled forward by create
        return raced, False

    async def referral_for(
        self,
        referral_id: str,
        *,
        counties: list[str] | None,
        agency_id: str | None,
        acting_for: str | None = None,
    ) -> ReferralDoc:
        """A referral the caller may see: their agency's, or their counties' (and, for an
        organisation-scoped caller, one with their organisation or one under it; else 404)."""
        doc = await self.get_referral(referral_id)
        if doc is None:
            raise NotFound("移交", "referral")
        if agency_id is not None:
            if doc.agency_id != agency_id:
                raise NotFound("移交", "referral")
        elif (
            counties is None
            or doc.county not in counties
            or not within(await self.reach(acting_for), doc.organisation_id)
        ):
            raise NotFound("移交", "referral")
        return doc

    async def referrals_of(self, *, agency_id: str) -> list[ReferralDoc]:
        """An agency's own referrals."""
        return [ReferralDoc.model_validate(d) for d in await self.repo.referrals_of_agency(agency_id)]

    async def referrals_to(
        self, *, counties: list[str], status: str | None, acting_for: str | None = None
    ) -> list[ReferralDoc]:
        """Referrals to the bodies of these counties (of one status, if given), within an
        organisation-scoped caller's organisation."""
        reach = await self.reach(acting_for)
        found: list[ReferralDoc] = []
        for county in counties:
            found += [
                doc
                for d in await self.repo.referrals_in(county, status=status)
                if within(reach, (doc := ReferralDoc.model_validate(d)).organisation_id)
            ]
        return found

    async def accept_referral(
        self,
        *,
        referral_id: str,
        by: str,
        counties: list[str],
        organisation_id: str | None = None,
        acting_for: str | None = None,
    ) -> ReferralDoc:
        """The receiving body accepts the referral (intake opens the case); the body it
        goes to, if named, is within the caller's counties and organisation too."""
        reach = await self.reach(acting_for)
        if organisation_id:
            org = await self.hierarchy.get(organisation_id)
            if org is None or not org.active or org.county not in counties or not within(reach, org.id):
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
        applied = await self.referrals.apply(
            referral_id,
            lambda d: lifecycle.accept(d, self.rules, by=by, organisation_id=organisation_id, now=now),
            now=now,
            visible=lambda d: d.county in counties and within(reach, d.organisation_id),
        )
        if applied.fresh:
            self._answered(applied.doc, "accepted")
        return applied.doc

    async def decline_referral(
        self,
        *,
        referral_id: str,
        by: str,
        counties: list[str],
        reason: str,
        acting_for: str | None = None,
    ) -> ReferralDoc:
        """The receiving body declines with a reason (returned to the sender)."""
        reach = await self.reach(acting_for)
        now = self.clock.now()
        applied = await self.referrals.apply(
            referral_id,
            lambda d: lifecycle.decline(d, by=by, reason=reason, now=now),
            now=now,
            visible=lambda d: d.county in counties and within(reach, d.organisation_id),
        )
        if applied.fresh:
            self._answered(applied.doc, "declined")
        return applied.doc

    def _answered(self, doc: ReferralDoc, outcome: str) -> None:
        kind = kind_label(doc.agency_kind)
        self.metrics.referrals.labels(kind, doc.county, outcome).inc()
        if doc.answered_at:
            self.metrics.response_seconds.labels(kind).observe(
                (doc.answered_at - doc.requested_at).total_seconds()
            )
