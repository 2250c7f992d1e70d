"""Registry rules for the workforce: filing organisations and mediators, their status,
training and disciplinary records, each change versioned, recorded and published."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pymongo.asynchronous.collection import AsyncCollection

from tiaojie.contracts import topics
from tiaojie.contracts.common import MediatorStatus
from tiaojie.contracts.envelope import CloudEvent, derived_id, new_event
from tiaojie.contracts.registry import MediatorUpdated, OrganisationUpdated
from tiaojie.registry.compliance import ReportSettings, build_report
from tiaojie.registry.eligibility import effective_status, suspended_until
from tiaojie.registry.locks import KeyedLocks
from tiaojie.registry.metrics import RegistryMetrics
from tiaojie.registry.models import (
    MEDIATOR_CONTENT_FIELDS,
    DisciplineIn,
    MediatorDoc,
    MediatorIn,
    OrganisationDoc,
    OrganisationIn,
    StatusIn,
    TrainingIn,
)
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.settings import RegistrySettings
from tiaojie.registry.validation import (
    discipline_errors,
    mediator_errors,
    organisation_errors,
)
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import Conflict, FieldError, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import (
    OUTBOX_REV,
    Document,
    OutboxRelay,
    outbox_entry,
    outbox_fields,
    outbox_update,
)
from tiaojie.runtime.pii import (
    PiiError,
    Protector,
    mask_id_number,
    mask_phone,
    normalise_id_number,
    normalise_mobile,
)

log = get_logger(__name__)

SOURCE = topics.service_source("registry")
T = TypeVar("T")
_PII_FIELDS = frozenset({"id_number_key", "phone_key", "relations"})


@dataclass(frozen=True)
class Filed(Generic[T]):
    """A stored record and what the write did: created, updated or unchanged."""

    record: T
    outcome: str


@dataclass(frozen=True)
class Protected:
    """A mediator's personal data, validated: keyed hashes, ciphertexts and masks."""

    content: Document  # compared fields (keys, not ciphertexts)
    secrets: Document  # ciphertexts and masks, written only when a key changed


def natural_organisation_id(division_code: str, name: str) -> str:
    """Stable id of an organisation filed without one: its natural key, hashed."""
    return "org-" + hashlib.sha256(f"{division_code}\x00{name}".encode()).hexdigest()[:12]


class RegistryService:
    """Filing rules; no Kafka or HTTP in here (events leave through the outbox)."""

    def __init__(
        self,
        *,
        repository: RegistryRepository,
        relay: OutboxRelay,
        protector: Protector,
        divisions: Divisions,
        settings: RegistrySettings,
        clock: Clock,
        metrics: RegistryMetrics,
    ) -> None:
        self.repo = repository
        self.relay = relay
        self.protector = protector
        self.divisions = divisions
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.dirty_counties: set[str] = set()
        self.locks = KeyedLocks()

    # -- organisations -----------------------------------------------------------------
    async def resolve_organisation_id(self, data: OrganisationIn) -> str:
        """The given id, else the organisation of the same name at the same division."""
        if data.id:
            return data.id
        for existing in await self.repo.organisations_at(data.division_code):
            if existing.name == data.name:
                return existing.id
        return natural_organisation_id(data.division_code, data.name)

    async def check_organisation(
        self, *, data: OrganisationIn, organisation_id: str, batch: Mapping[str, str | None] | None = None
    ) -> list[FieldError]:
        """Every rule of a filing; `batch` maps ids filed together to their parents."""
        errors = organisation_errors(data, divisions=self.divisions, today=self.clock.now().date())
        batch = batch or {}
        if data.parent_id and data.parent_id != organisation_id:
            if data.parent_id not in batch and await self.repo.get_organisation(data.parent_id) is None:
                errors.append(
                    FieldError("parent_id", "unknown_parent", "上级组织不存在", "no such parent organisation")
                )
            elif await self._reaches(data.parent_id, organisation_id, batch):
                errors.append(
                    FieldError(
                        "parent_id",
                        "parent_cycle",
                        "上级组织关系形成循环",
                        "the parent chain would loop back to this organisation",
                    )
                )
        return errors

    async def _reaches(self, start: str, target: str, batch: Mapping[str, str | None]) -> bool:
        current: str | None = start
        for _ in range(20):
            if current is None:
                return False
            if current == target:
                return True
            if current in batch:
                current = batch[current]
            else:
                org = await self.repo.get_organisation(current)
                current = org.parent_id if org else None
        return True  # deeper than any real hierarchy: treat as a loop

    async def file_organisation(self, *, data: OrganisationIn, by: str) -> Filed[OrganisationDoc]:
        """File (备案) or update an organisation; unchanged filings change nothing."""
        organisation_id = await self.resolve_organisation_id(data)
        errors = await self.check_organisation(data=data, organisation_id=organisation_id)
        if errors:
            raise Invalid(errors)
        content = data.content()

        def event(version: int, merged: Document) -> tuple[str, CloudEvent]:
            snapshot = OrganisationUpdated(
                organisation_id=organisation_id,
                version=version,
                **{k: merged.get(k) for k in OrganisationUpdated.model_fields if k in content},
            )
            return topics.ORGANISATIONS, self._event(snapshot, organisation_id, data.county, version)

        doc, outcome = await self._write(
            collection=self.repo.organisations,
            entity="organisation",
            entity_id=organisation_id,
            content=content,
            by=by,
            action="file",
            event_for=event,
            changes=lambda current: _diff(current, content),
        )
        return Filed(OrganisationDoc.model_validate(doc), outcome)

    async def organisation(self, organisation_id: str, *, counties: Sequence[str] | None) -> OrganisationDoc:
        found = await self.repo.get_organisation(organisation_id, counties=counties)
        if found is None:
            raise NotFound("调解组织", "organisation")
        return found

    # -- mediators -----------------------------------------------------------------------
    def protect(self, data: MediatorIn) -> tuple[Protected | None, list[FieldError]]:
        """Validate and protect a mediator's ID number, phone and relations."""
        errors: list[FieldError] = []
        content: Document = {"id_number_key": None, "phone_key": None, "relations": []}
        secrets: Document = {
            "id_number_enc": None,
            "id_number_masked": None,
            "phone_enc": None,
            "phone_masked": None,
        }
        if data.id_number:
            try:
                number = normalise_id_number(data.id_number)
                content["id_number_key"] = self.protector.keyed_hash(number)
                secrets["id_number_enc"] = self.protector.encrypt(number)
                secrets["id_number_masked"] = mask_id_number(number)
            except PiiError as exc:
                errors.append(FieldError("id_number", exc.code, exc.zh, exc.en))
        if data.phone:
            try:
                phone = normalise_mobile(data.phone)
                content["phone_key"] = self.protector.keyed_hash(phone, purpose="phone")
                secrets["phone_enc"] = self.protector.encrypt(phone)
                secrets["phone_masked"] = mask_phone(phone)
            except PiiError as exc:
                errors.append(FieldError("phone", exc.code, exc.zh, exc.en))
        for i, relation in enumerate(data.relations):
            try:
                key = self.protector.keyed_hash(normalise_id_number(relation.id_number))
                content["relations"].append({"relation": relation.relation, "key": key})
            except PiiError as exc:
                errors.append(FieldError(f"relations.{i}.id_number", exc.code, exc.zh, exc.en))
        return (None if errors else Protected(content, secrets)), errors

    async def resolve_mediator_id(self, data: MediatorIn, id_number_key: str | None) -> str:
        """The given id, else the mediator with the same ID number, else a new id."""
        if data.id:
            return data.id
        if id_number_key:
            same = await self.repo.mediator_by_key(id_number_key)
            if same is not None:
                return same.id
        return f"med-{uuid.uuid4().hex[:12]}"

    async def check_mediator(
        self,
        *,
        data: MediatorIn,
        mediator_id: str,
        id_number_key: str | None,
        known_organisations: Mapping[str, OrganisationDoc] | None = None,
    ) -> list[FieldError]:
        """Rules beyond personal data: grades, certificates, memberships, unique identity."""
        errors = mediator_errors(data, today=self.clock.now().date())
        if not self.divisions.is_county(data.county):
            errors.append(
                FieldError("county", "unknown_county", "县级行政区划代码不存在", "no such county code")
            )
        known = known_organisations or {}
        for i, org_id in enumerate(data.organisation_ids):
            if org_id not in known and await self.repo.get_organisation(org_id) is None:
                errors.append(
                    FieldError(
                        f"organisation_ids.{i}",
                        "unknown_organisation",
                        "调解组织不存在",
                        "no such organisation",
                    )
                )
        if id_number_key:
            holder = await self.repo.mediator_by_key(id_number_key)
            if holder is not None and holder.id != mediator_id:
                errors.append(
                    FieldError(
                        "id_number",
                        "id_number_taken",
                        "该身份证号码已登记为另一名调解员",
                        "this ID number is registered to another mediator",
                    )
                )
        return errors

    async def register_mediator(self, *, data: MediatorIn, by: str) -> Filed[MediatorDoc]:
        """Register or update a mediator; an unchanged registration changes nothing."""
        protected, errors = self.protect(data)
        if protected is None:
            raise Invalid(errors)
        key = protected.content["id_number_key"]
        mediator_id = await self.resolve_mediator_id(data, key)
        errors = await self.check_mediator(data=data, mediator_id=mediator_id, id_number_key=key)
        if any(e.code == "id_number_taken" for e in errors) and data.id:
            raise Conflict(
                "该身份证号码已登记为另一名调解员", "this ID number is registered to another mediator"
            )
        if errors:
            raise Invalid(errors)
        content = {
            **data.model_dump(mode="json", exclude={"id", "id_number", "phone", "relations"}),
            **protected.content,
        }
        if data.status is None:
            content.pop("status")
        assert set(content) <= set(MEDIATOR_CONTENT_FIELDS)
        return await self._write_mediator(
            mediator_id=mediator_id,
            content=content,
            secrets=protected.secrets,
            by=by,
            action="register",
        )

    async def _write_mediator(
        self,
        *,
        mediator_id: str,
        content: Document,
        by: str,
        action: str,
        secrets: Document | None = None,
        force: bool = False,
    ) -> Filed[MediatorDoc]:
        def event(version: int, merged: Document) -> tuple[str, CloudEvent]:
            mediator = MediatorDoc.model_validate({**merged, "_id": mediator_id})
            snapshot = MediatorUpdated(
                mediator_id=mediator_id,
                version=version,
                name=mediator.name,
                county=mediator.county,
                organisation_ids=mediator.organisation_ids,
                grade=mediator.grade,
                status=mediator.status,
                full_time=mediator.full_time,
                specialties=mediator.specialties,
                certificate_expires_on=mediator.certificate_expires_on,
                government_purchased=mediator.government_purchased,
                backgrounds=[str(b) for b in mediator.backgrounds],
                languages=mediator.languages,
                suspended_until=suspended_until(mediator, today=self.clock.now().date()),
                capacity=mediator.capacity,
            )
            return topics.MEDIATORS, self._event(snapshot, mediator_id, mediator.county, version)

        def extra(current: Document | None) -> Document:
            # Ciphertexts are random per encryption: rewrite them only with a new value.
            if secrets is None:
                return {}
            keep_id = current is not None and current.get("id_number_key") == content.get("id_number_key")
            keep_phone = current is not None and current.get("phone_key") == content.get("phone_key")
            out = dict(secrets)
            if keep_id:
                for k in ("id_number_enc", "id_number_masked"):
                    out.pop(k)
            if keep_phone:
                for k in ("phone_enc", "phone_masked"):
                    out.pop(k)
            return out

        doc, outcome = await self._write(
            collection=self.repo.mediators,
            entity="mediator",
            entity_id=mediator_id,
            content=content,
            by=by,
            action=action,
            event_for=event,
            changes=lambda current: _diff(current, content, hidden=_PII_FIELDS),
            extra=extra,
            force=force,
        )
        mediator = MediatorDoc.model_validate(doc)
        if outcome != "unchanged":
            self.dirty_counties.add(mediator.county)
        return Filed(mediator, outcome)

    async def mediator(self, mediator_id: str, *, counties: Sequence[str] | None) -> MediatorDoc:
        found = await self.repo.get_mediator(mediator_id, counties=counties)
        if found is None:
            raise NotFound("调解员", "mediator")
        return found

    async def set_status(
        self, *, mediator_id: str, change: StatusIn, by: str, counties: Sequence[str] | None
    ) -> Filed[MediatorDoc]:
        """Suspend, revoke or reinstate a mediator, with the reason."""
        await self.mediator(mediator_id, counties=counties)
        return await self._write_mediator(
            mediator_id=mediator_id,
            content={"status": str(change.status), "status_reason": change.reason},
            by=by,
            action=f"status:{change.status}",
        )

    async def add_training(
        self, *, mediator_id: str, record: TrainingIn, by: str, counties: Sequence[str] | None
    ) -> Filed[MediatorDoc]:
        """Record a training course a mediator attended."""
        current = await self.mediator(mediator_id, counties=counties)
        entry = {**record.model_dump(mode="json"), "id": uuid.uuid4().hex[:12], "recorded_by": by}
        training = [t.model_dump(mode="json") for t in current.training] + [entry]
        return await self._write_mediator(
            mediator_id=mediator_id, content={"training": training}, by=by, action="training"
        )

    async def add_discipline(
        self, *, mediator_id: str, record: DisciplineIn, by: str, counties: Sequence[str] | None
    ) -> Filed[MediatorDoc]:
        """Record a breach of the five prohibitions and its sanction (a suspension or a
        dismissal takes the mediator off new cases for its period)."""
        errors = discipline_errors(record.sanction, record.starts_on, record.ends_on)
        if errors:
            raise Invalid(errors)
        current = await self.mediator(mediator_id, counties=counties)
        entry = {**record.model_dump(mode="json"), "id": uuid.uuid4().hex[:12], "recorded_by": by}
        discipline = [d.model_dump(mode="json") for d in current.discipline] + [entry]
        return await self._write_mediator(
            mediator_id=mediator_id, content={"discipline": discipline}, by=by, action="discipline"
        )

    async def history(self, entity_id: str, *, version: int) -> list[Document]:
        return await self.repo.history_of(entity_id, up_to_version=version)

    # -- reporting ---------------------------------------------------------------------------
    async def compliance(self, *, county: str) -> dict[str, Any]:
        """A county's compliance report; its gaps also set the compliance gauges."""
        report = build_report(
            county=county,
            organisations=await self.repo.organisations_in(county),
            mediators=await self.repo.mediators_in(county),
            divisions=self.divisions,
            today=self.clock.now().date(),
            settings=ReportSettings(
                expiring_within_days=self.settings.expiring_within_days,
                committee_min=self.settings.committee_min_members,
                committee_max=self.settings.committee_max_members,
            ),
        )
        for norm, gap in report["gaps"].items():
            self.metrics.compliance_gap.labels(county, norm).set(gap)
        return report

    async def refresh_gauges(self, counties: Iterable[str] | None = None) -> None:
        """Recount mediators by grade and effective status (which moves with the date)."""
        today = self.clock.now().date()
        for county in counties if counties is not None else await self.repo.counties():
            tally = {(g, str(s)): 0 for g in ("1", "2", "3", "4", "none") for s in MediatorStatus}
            for m in await self.repo.mediators_in(county):
                tally[(str(m.grade) if m.grade else "none", str(effective_status(m, today=today)))] += 1
            for (grade, status), n in tally.items():
                self.metrics.mediators.labels(county, grade, status).set(n)
            await self.compliance(county=county)

    async def run_gauges(self) -> None:
        """Refresh changed counties every few seconds and all of them periodically."""
        last_full = last_prune = -1e9
        while True:
            try:
                now = time.monotonic()
                if now - last_full >= self.settings.gauges_refresh_seconds:
                    self.dirty_counties.clear()
                    await self.refresh_gauges()
                    last_full = now
                if now - last_prune >= 3600:
                    keep = self.settings.fairness_window_days + 1
                    await self.repo.forget_grants(before=self.clock.now().date() - timedelta(days=keep))
                    last_prune = now
                elif self.dirty_counties:
                    counties = sorted(self.dirty_counties)
                    self.dirty_counties.clear()
                    await self.refresh_gauges(counties)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("gauge refresh failed", error=type(exc).__name__)
            await asyncio.sleep(2.0)

    # -- versioned writes ----------------------------------------------------------------
    def _event(self, snapshot: Any, subject: str, county: str, version: int) -> CloudEvent:
        kind = type(snapshot).__name__
        return new_event(
            snapshot,
            source=SOURCE,
            subject=subject,
            county=county,
            id=derived_id(subject, f"{kind}-v{version}"),
            time=self.clock.now(),
        )

    async def _write(
        self,
        *,
        collection: AsyncCollection[Document],
        entity: str,
        entity_id: str,
        content: Document,
        by: str,
        action: str,
        event_for: Callable[[int, Document], tuple[str, CloudEvent]],
        changes: Callable[[Document | None], Document],
        extra: Callable[[Document | None], Document] | None = None,
        force: bool = False,
    ) -> tuple[Document, str]:
        """Write a new version (history first, then the record with its event in the
        outbox, guarded by the version read) unless nothing changed; retried on races."""
        async with self.locks.hold(f"{entity}:{entity_id}"):
            return await self._write_locked(
                collection=collection,
                entity=entity,
                entity_id=entity_id,
                content=content,
                by=by,
                action=action,
                event_for=event_for,
                changes=changes,
                extra=extra,
                force=force,
            )

    async def _write_locked(
        self,
        *,
        collection: AsyncCollection[Document],
        entity: str,
        entity_id: str,
        content: Document,
        by: str,
        action: str,
        event_for: Callable[[int, Document], tuple[str, CloudEvent]],
        changes: Callable[[Document | None], Document],
        extra: Callable[[Document | None], Document] | None,
        force: bool,
    ) -> tuple[Document, str]:
        for _ in range(8):
            current = await self.repo.raw(collection, entity_id)
            if current is not None and not force and all(current.get(k) == v for k, v in content.items()):
                return current, "unchanged"
            version = int((current or {}).get("version", 0)) + 1
            now = self.clock.now()
            fields = {
                **content,
                **(extra(current) if extra else {}),
                "version": version,
                "updated_at": now,
                "updated_by": by,
            }
            topic, event = event_for(version, {**(current or {}), **fields})
            await self.repo.record_history(
                {
                    "_id": f"{entity}:{entity_id}:v{version}",
                    "entity": entity,
                    "entity_id": entity_id,
                    "version": version,
                    "at": now,
                    "by": by,
                    "action": "create" if current is None else action,
                    "changes": changes(current),
                }
            )
            if current is None:
                doc: Document | None = {"_id": entity_id, **fields, **outbox_fields([(topic, event)])}
                assert doc is not None
                if not await self.repo.insert_new(collection, doc):
                    continue
                rev = 1
            else:
                sets, incs = outbox_update([(topic, event)])
                doc = await self.repo.update_version(
                    collection, entity_id, int(current["version"]), {"$set": {**fields, **sets}, "$inc": incs}
                )
                if doc is None:
                    continue
                rev = doc.get(OUTBOX_REV, 0)
            await self.relay.flush(collection, entity_id, {event.id: outbox_entry(topic, event)}, rev=rev)
            return doc, "created" if current is None else "updated"
        raise Conflict("记录正被同时修改，请稍后重试", "the record is being changed concurrently; retry")


def _diff(current: Document | None, content: Document, *, hidden: frozenset[str] = frozenset()) -> Document:
    """What a write changes, field by field; personal data only as 'changed'."""
    out: Document = {}
    for key, value in content.items():
        before = (current or {}).get(key)
        if before == value:
            continue
        if key in hidden:
            out[key] = {"changed": True}
        elif key in ("training", "discipline"):
            out[key] = {"from_count": len(before or []), "to_count": len(value or [])}
        else:
            out[key] = {"from": before, "to": value}
    return out
