"""Intake rules: validate, protect personal data, route, register, record assignments."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel, OrganisationKind
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.intake import CaseRegistered, DisputeSubmission, PartyIn
from tiaojie.contracts.registry import MediatorAssigned, OrganisationUpdated
from tiaojie.intake.metrics import IntakeMetrics
from tiaojie.intake.models import Assignment, CaseDoc, HistoryEntry, OrganisationView, StoredParty
from tiaojie.intake.repository import IntakeRepository
from tiaojie.intake.settings import IntakeSettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import FieldError, Invalid
from tiaojie.runtime.mongo import OUTBOX, OUTBOX_REV, OutboxRelay, outbox_fields
from tiaojie.runtime.pii import PiiError, Protector, normalise_id_number, normalise_mobile

SOURCE = "/tiaojie/intake"
_CASE_NS = uuid.UUID("0b6f7f4e-4a0e-4b7e-9d53-6c1f0f1e2a10")
_TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Registration:
    case: CaseDoc
    created: bool


def case_id_for(*, scope: str, key: str) -> str:
    """Deterministic case id for an idempotent submission (HTTP key or Kafka event id)."""
    return str(uuid.uuid5(_CASE_NS, f"{scope}\x00{key}"))


def request_hash(submission: DisputeSubmission) -> str:
    return hashlib.sha256(
        orjson.dumps(submission.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def new_tracking_code() -> str:
    return "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(10))


class IntakeService:
    """The intake rules; no Kafka or HTTP in here (events leave through the outbox)."""

    def __init__(
        self,
        *,
        repository: IntakeRepository,
        relay: OutboxRelay,
        protector: Protector,
        divisions: Divisions,
        settings: IntakeSettings,
        clock: Clock,
        metrics: IntakeMetrics,
    ) -> None:
        self.repo = repository
        self.relay = relay
        self.protector = protector
        self.divisions = divisions
        self.settings = settings
        self.clock = clock
        self.metrics = metrics

    # -- validation -------------------------------------------------------------------
    def validate(self, submission: DisputeSubmission) -> list[FieldError]:
        """Rules beyond the schema: ID numbers, mobiles, and divisions that exist."""
        errors: list[FieldError] = []
        if not self.divisions.is_county(submission.county):
            errors.append(
                FieldError("county", "unknown_county", "县级行政区划代码不存在", "no such county code")
            )
        if submission.township:
            if not self.divisions.is_township(submission.township):
                errors.append(
                    FieldError(
                        "township", "unknown_township", "乡镇（街道）代码不存在", "no such township code"
                    )
                )
            elif self.divisions.county_of(submission.township) != submission.county:
                errors.append(
                    FieldError(
                        "township",
                        "township_outside_county",
                        "乡镇（街道）不属于所选县区",
                        "township is not in the given county",
                    )
                )
        for group, parties in (
            ("applicants", submission.applicants),
            ("respondents", submission.respondents),
        ):
            for index, party in enumerate(parties):
                errors.extend(self._party_errors(f"{group}.{index}", party))
        return errors

    def _party_errors(self, where: str, party: PartyIn) -> list[FieldError]:
        errors = []
        if party.id_number is not None:
            try:
                normalise_id_number(party.id_number)
            except PiiError as exc:
                errors.append(FieldError(f"{where}.id_number", exc.code, exc.zh, exc.en))
        if party.phone is not None:
            try:
                normalise_mobile(party.phone)
            except PiiError as exc:
                errors.append(FieldError(f"{where}.phone", exc.code, exc.zh, exc.en))
        return errors

    def _protect(self, role: str, party: PartyIn) -> StoredParty:
        id_number = normalise_id_number(party.id_number) if party.id_number else None
        phone = normalise_mobile(party.phone) if party.phone else None
        return StoredParty(
            role=role,
            kind=party.kind,
            name_enc=self.protector.encrypt(party.name),
            id_number_enc=self.protector.encrypt(id_number) if id_number else None,
            id_number_key=self.protector.keyed_hash(id_number) if id_number else None,
            phone_enc=self.protector.encrypt(phone) if phone else None,
            phone_key=self.protector.keyed_hash(phone, purpose="phone") if phone else None,
            vulnerable=party.vulnerable,
        )

    # -- routing ----------------------------------------------------------------------
    async def route(
        self, *, county: str, township: str | None, category: Category
    ) -> OrganisationView | None:
        """Township committee of the dispute's location, else the county centre."""
        if township:
            local = [o for o in await self.repo.organisations_at(township[:9]) if o.active]
            committees = [o for o in local if o.kind == OrganisationKind.TOWNSHIP_COMMITTEE]
            if committees:
                return min(committees, key=lambda o: o.id)
        in_county = [o for o in await self.repo.organisations_in(county) if o.active]
        centres = [o for o in in_county if o.kind == OrganisationKind.CENTRE and o.level == "county"]
        return min(centres, key=lambda o: o.id) if centres else None

    # -- registration -----------------------------------------------------------------
    async def register(
        self,
        *,
        submission: DisputeSubmission,
        registered_by: str,
        case_id: str | None = None,
        channel: Channel | None = None,
    ) -> Registration:
        """Register a dispute: validate, protect, route, store with its CaseRegistered event."""
        errors = self.validate(submission)
        if errors:
            for error in errors:
                self.metrics.validation_failures.labels(submission.channel, error.field.split(".")[0]).inc()
            raise Invalid(errors)
        case_id = case_id or str(uuid.uuid4())
        digest = request_hash(submission)
        existing = await self.repo.get_case(case_id)
        if existing is not None:
            return await self._replayed(existing, digest)

        now = self.clock.now()
        category = submission.category or Category.OTHER
        organisation = await self.route(
            county=submission.county, township=submission.township, category=category
        )
        parties = [self._protect("applicant", p) for p in submission.applicants] + [
            self._protect("respondent", p) for p in submission.respondents
        ]
        case = CaseDoc(
            id=case_id,
            tracking_code=new_tracking_code(),
            status=CaseStatus.RECEIVED,
            channel=channel or submission.channel,
            county=submission.county,
            township=submission.township,
            category=category,
            description=submission.description,
            amount=submission.amount,
            parties=parties,
            organisation_id=organisation.id if organisation else None,
            received_at=now,
            acceptance_due=now + timedelta(days=self.settings.acceptance_days),
            registered_by=registered_by,
            request_hash=digest,
            history=[HistoryEntry(at=now, action="register", by=registered_by, status=CaseStatus.RECEIVED)],
        )
        event = new_event(
            CaseRegistered(
                case_id=case.id,
                channel=case.channel,
                county=case.county,
                township=case.township,
                category=case.category,
                category_confidence=case.category_confidence,
                risk_level=case.risk_level,
                risk_signals=case.risk_signals,
                organisation_id=case.organisation_id,
                party_keys=sorted({p.id_number_key for p in parties if p.id_number_key}),
                parties_count=len(parties),
                amount=case.amount,
                received_at=now,
                acceptance_due=case.acceptance_due,
            ),
            source=SOURCE,
            subject=case.id,
            county=case.county,
            id=case_id_for(scope="CaseRegistered", key=case.id),
            time=now,
        )
        doc = {**case.to_mongo(), **outbox_fields([(topics.CASES, event)])}
        if not await self.repo.insert_case(doc):
            # Another request with the same key won the race: answer with its case.
            raced = await self.repo.get_case(case_id)
            assert raced is not None
            return await self._replayed(raced, digest)
        self.metrics.received.labels(case.county, case.channel, case.category).inc()
        await self.relay.flush(self.repo.cases, case.id, doc[OUTBOX], rev=1)
        return Registration(case=case, created=True)

    async def _replayed(self, case: CaseDoc, digest: str) -> Registration:
        if case.request_hash and case.request_hash != digest:
            raise Invalid(
                [
                    FieldError(
                        "Idempotency-Key",
                        "idempotency_key_reused",
                        "该幂等键已用于另一份不同的申请",
                        "this Idempotency-Key was used for a different submission",
                    )
                ]
            )
        raw = await self.repo.get_case_raw(case.id)
        if raw and raw.get(OUTBOX):
            # A crash may have left the event unpublished: publish it now (stable ids).
            await self.relay.flush(self.repo.cases, case.id, raw[OUTBOX], rev=raw.get(OUTBOX_REV))
        return Registration(case=case, created=False)

    # -- projections and assignments ----------------------------------------------------
    async def project_organisation(self, *, event: OrganisationUpdated) -> None:
        """Keep intake's routing table in step with the registry."""
        fields = event.model_dump(mode="json", exclude={"organisation_id", "version"})
        await self.repo.upsert_organisation(
            organisation_id=event.organisation_id, version=event.version, fields=fields
        )

    async def record_assignment(self, *, event: MediatorAssigned, at: datetime) -> None:
        """Record the mediator the registry chose (idempotent: same assignment, no change)."""
        case = await self.repo.get_case(event.case_id)
        if case is None:
            return  # a case of another deployment or namespace: nothing to record
        if (
            case.assignment
            and case.assignment.mediator_id == event.mediator_id
            and case.assignment.assigned_at == event.assigned_at
        ):
            return
        assignment = Assignment(
            mediator_id=event.mediator_id,
            mediator_name=event.mediator_name,
            organisation_id=event.organisation_id,
            assigned_at=event.assigned_at,
            reason=event.reason,
            escalated_from=event.escalated_from,
        )
        entry = HistoryEntry(
            at=at, action="assign", by="registry", status=case.status, note=f"mediator {event.mediator_id}"
        )
        await self.repo.update_case(
            case.id,
            {
                "$set": {
                    "assignment": assignment.model_dump(mode="python"),
                    "organisation_id": event.organisation_id,
                },
                "$push": {"history": entry.model_dump(mode="python")},
                "$inc": {"version": 1},
            },
        )
