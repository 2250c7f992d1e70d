"""Registry rules: filing organisations and mediators, eligibility, and assignment."""

from __future__ import annotations

import uuid
from datetime import date

from tiaojie.contracts import topics
from tiaojie.contracts.common import MediatorStatus, OrganisationKind
from tiaojie.contracts.envelope import CloudEvent, derived_id, new_event
from tiaojie.contracts.intake import CaseRegistered
from tiaojie.contracts.registry import (
    Candidate,
    MediatorAssigned,
    MediatorUpdated,
    OrganisationUpdated,
)
from tiaojie.registry.metrics import RegistryMetrics
from tiaojie.registry.models import MediatorDoc, MediatorIn, OrganisationDoc, OrganisationIn
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.errors import FieldError, Invalid, NotFound
from tiaojie.runtime.mongo import OUTBOX, OUTBOX_REV, OutboxRelay, outbox_fields, outbox_update
from tiaojie.runtime.pii import PiiError, Protector, normalise_id_number

SOURCE = "/tiaojie/registry"


def eligible(mediator: MediatorDoc, *, today: date) -> bool:
    """Computed, never stored: active, certified and the certificate not expired."""
    if mediator.status != MediatorStatus.ACTIVE:
        return False
    if not mediator.certificate_number or mediator.certificate_expires_on is None:
        return False
    return mediator.certificate_expires_on >= today


class RegistryService:
    def __init__(
        self,
        *,
        repository: RegistryRepository,
        relay: OutboxRelay,
        protector: Protector,
        settings: RegistrySettings,
        clock: Clock,
        metrics: RegistryMetrics,
    ) -> None:
        self.repo = repository
        self.relay = relay
        self.protector = protector
        self.settings = settings
        self.clock = clock
        self.metrics = metrics

    # -- filing ------------------------------------------------------------------------
    async def file_organisation(self, *, data: OrganisationIn, by: str) -> OrganisationDoc:
        """Create or update an organisation and publish its snapshot."""
        organisation_id = data.id or f"org-{uuid.uuid4().hex[:12]}"
        if (
            data.parent_id
            and data.parent_id != organisation_id
            and await self.repo.get_organisation(data.parent_id) is None
        ):
            raise Invalid(
                [FieldError("parent_id", "unknown_parent", "上级组织不存在", "no such parent organisation")]
            )
        current = await self.repo.get_organisation(organisation_id)
        version = (current.version + 1) if current else 1
        fields = data.model_dump(mode="json", exclude={"id"})
        snapshot = OrganisationUpdated(organisation_id=organisation_id, version=version, **fields)
        event = new_event(
            snapshot,
            source=SOURCE,
            subject=organisation_id,
            county=data.county,
            id=derived_id(organisation_id, f"organisation-v{version}"),
        )
        sets, incs = outbox_update([(topics.ORGANISATIONS, event)])
        doc = await self.repo.save_organisation(
            organisation_id,
            {"$set": {**fields, "version": version, "updated_by": by, **sets}, "$inc": incs},
        )
        await self.relay.flush(
            self.repo.organisations,
            organisation_id,
            {event.id: doc[OUTBOX][event.id]},
            rev=doc.get(OUTBOX_REV),
        )
        return OrganisationDoc.model_validate(doc)

    async def register_mediator(self, *, data: MediatorIn, by: str) -> MediatorDoc:
        """Create or update a mediator and publish a snapshot without personal data."""
        errors = []
        id_key = id_enc = None
        if data.id_number:
            try:
                number = normalise_id_number(data.id_number)
                id_key, id_enc = self.protector.keyed_hash(number), self.protector.encrypt(number)
            except PiiError as exc:
                errors.append(FieldError("id_number", exc.code, exc.zh, exc.en))
        for i, org in enumerate(data.organisation_ids):
            if await self.repo.get_organisation(org) is None:
                errors.append(
                    FieldError(
                        f"organisation_ids.{i}",
                        "unknown_organisation",
                        "调解组织不存在",
                        "no such organisation",
                    )
                )
        if errors:
            raise Invalid(errors)
        mediator_id = data.id or f"med-{uuid.uuid4().hex[:12]}"
        current = await self.repo.get_mediator(mediator_id)
        version = (current.version + 1) if current else 1
        fields = data.model_dump(mode="json", exclude={"id", "id_number"})
        if id_key:
            fields |= {"id_number_key": id_key, "id_number_enc": id_enc}
        snapshot = MediatorUpdated(
            mediator_id=mediator_id,
            version=version,
            name=data.name,
            county=data.county,
            organisation_ids=data.organisation_ids,
            grade=data.grade,
            status=data.status,
            full_time=data.full_time,
            specialties=data.specialties,
            certificate_expires_on=data.certificate_expires_on,
        )
        event = new_event(
            snapshot,
            source=SOURCE,
            subject=mediator_id,
            county=data.county,
            id=derived_id(mediator_id, f"mediator-v{version}"),
        )
        sets, incs = outbox_update([(topics.MEDIATORS, event)])
        doc = await self.repo.save_mediator(
            mediator_id, {"$set": {**fields, "version": version, "updated_by": by, **sets}, "$inc": incs}
        )
        await self.relay.flush(
            self.repo.mediators, mediator_id, {event.id: doc[OUTBOX][event.id]}, rev=doc.get(OUTBOX_REV)
        )
        return MediatorDoc.model_validate(doc)

    async def mediator(self, mediator_id: str) -> MediatorDoc:
        found = await self.repo.get_mediator(mediator_id)
        if found is None:
            raise NotFound("调解员", "mediator")
        return found

    # -- assignment ----------------------------------------------------------------------
    async def assign(self, *, event: CloudEvent, case: CaseRegistered) -> None:
        """Choose a mediator for a newly registered case (idempotent per case)."""
        existing = await self.repo.get_assignment(case.case_id)
        if existing is not None:
            await self.repo.add_load(existing["mediator_id"], case.case_id)
            if existing.get(OUTBOX):
                await self.relay.flush(
                    self.repo.assignments, case.case_id, existing[OUTBOX], rev=existing.get(OUTBOX_REV)
                )
            return
        if not case.organisation_id:
            self.metrics.assignments.labels(case.county, "unrouted").inc()
            return
        choice = await self._choose(case, case.organisation_id)
        if choice is None:
            self.metrics.assignments.labels(case.county, "none_eligible").inc()
            return
        mediator, organisation_id, ranked, escalated_from = choice
        now = self.clock.now()
        decision = MediatorAssigned(
            case_id=case.case_id,
            county=case.county,
            organisation_id=organisation_id,
            mediator_id=mediator.id,
            mediator_name=mediator.name,
            score=ranked[0].score,
            breakdown=ranked[0].breakdown,
            runners_up=ranked[1:4],
            escalated_from=escalated_from,
            reason="lowest current load among eligible mediators"
            if not escalated_from
            else f"nobody eligible in {escalated_from}; escalated",
            assigned_at=now,
        )
        out = new_event(
            decision,
            source=SOURCE,
            subject=case.case_id,
            county=case.county,
            id=derived_id(event.id, "assign"),
            time=now,
        )
        doc = {
            "_id": case.case_id,
            "county": case.county,
            "organisation_id": organisation_id,
            "mediator_id": mediator.id,
            "score": decision.score,
            "assigned_at": now,
            **outbox_fields([(topics.ASSIGNMENTS, out)]),
        }
        if not await self.repo.insert_assignment(doc):
            await self.assign(event=event, case=case)  # raced with a redelivery: converge
            return
        await self.repo.add_load(mediator.id, case.case_id)
        self.metrics.assignments.labels(case.county, "escalated" if escalated_from else "assigned").inc()
        await self.relay.flush(self.repo.assignments, case.case_id, doc[OUTBOX], rev=1)

    async def _choose(
        self, case: CaseRegistered, organisation_id: str
    ) -> tuple[MediatorDoc, str, list[Candidate], str | None] | None:
        today = self.clock.now().date()
        tried: list[str] = []
        current: str | None = organisation_id
        while current and current not in tried:
            tried.append(current)
            ranked = self._rank(await self.repo.mediators_of(current), today=today)
            if ranked:
                best_id = ranked[0].mediator_id
                best = next(m for m in await self.repo.mediators_of(current) if m.id == best_id)
                return best, current, ranked, (organisation_id if current != organisation_id else None)
            current = await self._escalation_target(current, case.county)
        return None

    def _rank(self, mediators: list[MediatorDoc], *, today: date) -> list[Candidate]:
        ranked = []
        for m in mediators:
            if not eligible(m, today=today):
                continue
            capacity = m.capacity if m.capacity is not None else self.settings.default_capacity
            load = len(m.active_cases)
            if load >= capacity:
                continue
            score = round(1.0 - load / max(capacity, 1), 4)
            ranked.append(Candidate(mediator_id=m.id, score=score, breakdown={"load": score}))
        return sorted(ranked, key=lambda c: (-c.score, c.mediator_id))

    async def _escalation_target(self, organisation_id: str, county: str) -> str | None:
        org = await self.repo.get_organisation(organisation_id)
        if org and org.parent_id:
            return org.parent_id
        centres = [
            o
            for o in await self.repo.organisations_in(county)
            if o.kind == OrganisationKind.CENTRE and o.level == "county"
        ]
        return min(centres, key=lambda o: o.id).id if centres else None
