"""Registry rules for the workforce: filing organisations and mediators, their status,
training and disciplinary records, each change versioned, recorded and published.

Organisations and mediators are aggregates of the storage engine: a change is decided on
the current document (`_decider`), claimed as the next revision, and its event published
by the engine; on a lost claim it is decided again on the head, so concurrent writers on
any replica lose nothing. The document carries the history entry of its own version
(`change`), recorded in `history` after the write (and by the next writer or the
periodic sweep if a writer crashed first)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from tiaojie.contracts import topics
from tiaojie.contracts.common import MediatorStatus
from tiaojie.contracts.envelope import CloudEvent, derived_id, new_event
from tiaojie.contracts.registry import MediatorUpdated, OrganisationUpdated
from tiaojie.registry import access as rules
from tiaojie.registry.access import Access
from tiaojie.registry.compliance import ReportSettings, build_report
from tiaojie.registry.eligibility import effective_status, suspended_until
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
from tiaojie.runtime import directory
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import Conflict, FieldError, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import (
    OUTBOX,
    OUTBOX_AT,
    OUTBOX_PENDING,
    OUTBOX_REV,
    Document,
    sweep_forever,
)
from tiaojie.runtime.pii import (
    PiiError,
    Protector,
    mask_id_number,
    mask_phone,
    normalise_id_number,
    normalise_mobile,
)
from tiaojie.runtime.revisions import Change, Decide, Revisions

log = get_logger(__name__)

SOURCE = topics.service_source("registry")
T = TypeVar("T")
_PII_FIELDS = frozenset({"id_number_key", "phone_key", "relations"})
_OLD_OUTBOX = frozenset({OUTBOX, OUTBOX_PENDING, OUTBOX_REV, OUTBOX_AT})
# Entities filed per claim command of the engine (an import files thousands).
WRITE_ROUND = 100


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
    """Filing rules; no Kafka or HTTP in here (the engine publishes the events)."""

    def __init__(
        self,
        *,
        repository: RegistryRepository,
        protector: Protector,
        divisions: Divisions,
        settings: RegistrySettings,
        clock: Clock,
        metrics: RegistryMetrics,
    ) -> None:
        self.repo = repository
        self.protector = protector
        self.divisions = divisions
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.dirty_counties: set[str] = set()
        self._last_full_refresh = -1e9

    # -- who may do what -------------------------------------------------------------------
    async def access_for(
        self, *, counties: Sequence[str], organisation_id: str | None = None, mediator_id: str | None = None
    ) -> Access:
        """A caller's reach: its counties and, for a token naming an organisation, that
        organisation and those under it; `mediator_id` for a mediator's token ("" for none)."""
        allowed = frozenset(counties)
        domain = None
        if organisation_id is not None:
            organisations = [o for c in sorted(allowed) for o in await self.repo.organisations_in(c)]
            domain = directory.domain_of(organisation_id, organisations, unknown_root=False)
        return Access(counties=allowed, domain=domain, mediator_id=mediator_id)

    # -- organisations -----------------------------------------------------------------
    async def resolve_organisation_id(self, data: OrganisationIn) -> str:
        """The given id, else the organisation of the same name at the same division."""
        if data.id:
            return data.id
        for existing in await self.repo.organisations_at(data.division_code):
            if existing.name == data.name:
                return existing.id
        return natural_organisation_id(data.division_code, data.name)

    async def authorise_organisation(
        self, *, data: OrganisationIn, organisation_id: str, access: Access | None
    ) -> None:
        """The filing against the organisation as it is and as it will be (404, 403, or 422
        for a new one in another county)."""
        current = await self.repo.get_organisation(organisation_id)
        rules.organisation_change(access, current=current, county=data.county, parent_id=data.parent_id)

    async def check_organisation(
        self,
        *,
        data: OrganisationIn,
        organisation_id: str,
        batch: Mapping[str, str | None] | None = None,
        access: Access | None = None,
    ) -> list[FieldError]:
        """Every rule of a filing; `batch` maps ids filed together to their parents; a
        parent the caller may not name is answered as a missing one."""
        errors = organisation_errors(data, divisions=self.divisions, today=self.clock.now().date())
        batch = batch or {}
        if data.parent_id and data.parent_id != organisation_id:
            parent = None if data.parent_id in batch else await self.repo.get_organisation(data.parent_id)
            current = await self.repo.get_organisation(organisation_id) if parent is not None else None
            if data.parent_id not in batch and not rules.parent_link(access, parent=parent, current=current):
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

    async def file_organisation(
        self, *, data: OrganisationIn, by: str, access: Access | None = None
    ) -> Filed[OrganisationDoc]:
        """File (备案) or update an organisation; unchanged filings change nothing."""
        organisation_id = await self.resolve_organisation_id(data)
        await self.authorise_organisation(data=data, organisation_id=organisation_id, access=access)
        errors = await self.check_organisation(data=data, organisation_id=organisation_id, access=access)
        if errors:
            raise Invalid(errors)
        [filed] = await self.file_organisations(
            filings=[data.model_copy(update={"id": organisation_id})], by=by
        )
        return filed

    async def file_organisations(
        self, *, filings: Sequence[OrganisationIn], by: str
    ) -> list[Filed[OrganisationDoc]]:
        """File organisations already checked and given their ids (an import), in rounds."""
        writes = {f.id or "": self._organisation_write(f, by=by) for f in filings}
        outcomes = await self._apply_writes(self.repo.organisation_store, writes)
        return [Filed(OrganisationDoc.model_validate(doc), outcome) for doc, outcome in outcomes]

    def _organisation_write(self, data: OrganisationIn, *, by: str) -> Write:
        organisation_id = data.id or ""
        content = data.content()

        def event(version: int, merged: Document) -> tuple[str, CloudEvent]:
            snapshot = OrganisationUpdated(
                organisation_id=organisation_id,
                version=version,
                **{k: merged.get(k) for k in OrganisationUpdated.model_fields if k in content},
            )
            return topics.ORGANISATIONS, self._event(snapshot, organisation_id, data.county, version)

        return Write(
            entity="organisation",
            entity_id=organisation_id,
            content_of=lambda current: content,
            by=by,
            action="file",
            event_for=event,
            hidden=frozenset(),
        )

    async def organisation(self, organisation_id: str, *, access: Access | None) -> OrganisationDoc:
        return rules.require_organisation(access, await self.repo.get_organisation(organisation_id))

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
        access: Access | None = None,
    ) -> list[FieldError]:
        """Rules beyond personal data: grades, certificates, memberships (organisations of
        the mediator's county that the caller sees), unique identity."""
        errors = mediator_errors(data, today=self.clock.now().date())
        if not self.divisions.is_county(data.county):
            errors.append(
                FieldError("county", "unknown_county", "县级行政区划代码不存在", "no such county code")
            )
        known = {o: await self.repo.get_organisation(o) for o in dict.fromkeys(data.organisation_ids)}
        errors += rules.organisation_links(
            access, county=data.county, organisation_ids=data.organisation_ids, known=known
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

    async def authorise_mediator(self, *, data: MediatorIn, mediator_id: str, access: Access | None) -> None:
        """The registration against the mediator as it is and as it will be (404, 403, or
        422 for a new one in another county)."""
        rules.mediator_change(
            access,
            current=await self.repo.get_mediator(mediator_id),
            county=data.county,
            organisation_ids=data.organisation_ids,
        )

    async def register_mediator(
        self, *, data: MediatorIn, by: str, access: Access | None = None
    ) -> Filed[MediatorDoc]:
        """Register or update a mediator; an unchanged registration changes nothing."""
        protected, errors = self.protect(data)
        if protected is None:
            raise Invalid(errors)
        key = protected.content["id_number_key"]
        mediator_id = await self.resolve_mediator_id(data, key)
        await self.authorise_mediator(data=data, mediator_id=mediator_id, access=access)
        errors = await self.check_mediator(
            data=data, mediator_id=mediator_id, id_number_key=key, access=access
        )
        if any(e.code == "id_number_taken" for e in errors) and data.id:
            raise Conflict(
                "该身份证号码已登记为另一名调解员", "this ID number is registered to another mediator"
            )
        if errors:
            raise Invalid(errors)
        [filed] = await self.register_mediators(
            registrations=[(data.model_copy(update={"id": mediator_id}), protected)], by=by, access=access
        )
        return filed

    async def register_mediators(
        self,
        *,
        registrations: Sequence[tuple[MediatorIn, Protected]],
        by: str,
        access: Access | None = None,
    ) -> list[Filed[MediatorDoc]]:
        """Register mediators already checked and given their ids (an import), in rounds;
        each is authorised again on the head it is written over."""
        writes = {}
        for data, protected in registrations:
            content = {
                **data.model_dump(mode="json", exclude={"id", "id_number", "phone", "relations"}),
                **protected.content,
            }
            if data.status is None:
                content.pop("status")
            assert set(content) <= set(MEDIATOR_CONTENT_FIELDS)
            writes[data.id or ""] = self._mediator_write(
                mediator_id=data.id or "",
                content_of=_authorised(_fixed(content), _registration_check(access, data)),
                by=by,
                action="register",
                secrets=protected.secrets,
            )
        return await self._apply_mediator_writes(writes)

    async def _write_mediator(
        self,
        *,
        mediator_id: str,
        content_of: Callable[[Document | None], Document | None],
        by: str,
        action: str,
        access: Access | None,
    ) -> Filed[MediatorDoc]:
        # Checked again on the head: a mediator moved meanwhile is not edited by a stranger.
        guarded = _authorised(content_of, lambda current: rules.mediator_edit(access, current))
        write = self._mediator_write(mediator_id=mediator_id, content_of=guarded, by=by, action=action)
        [filed] = await self._apply_mediator_writes({mediator_id: write})
        return filed

    async def _apply_mediator_writes(self, writes: Mapping[str, Write]) -> list[Filed[MediatorDoc]]:
        filed = []
        for doc, outcome in await self._apply_writes(self.repo.mediator_store, writes):
            mediator = MediatorDoc.model_validate(doc)
            if outcome != "unchanged":
                self.dirty_counties.add(mediator.county)
            filed.append(Filed(mediator, outcome))
        return filed

    def _mediator_write(
        self,
        *,
        mediator_id: str,
        content_of: Callable[[Document | None], Document | None],
        by: str,
        action: str,
        secrets: Document | None = None,
    ) -> Write:
        today = self.clock.now().date()

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
                suspended_until=suspended_until(mediator, today=today),
                capacity=mediator.capacity,
            )
            return topics.MEDIATORS, self._event(snapshot, mediator_id, mediator.county, version)

        def secrets_of(current: Document | None, content: Document) -> Document:
            # Ciphertexts are random per encryption: rewrite them only with a new value.
            if secrets is None:
                return {}
            out = dict(secrets)
            if current is not None and current.get("id_number_key") == content.get("id_number_key"):
                for k in ("id_number_enc", "id_number_masked"):
                    out.pop(k)
            if current is not None and current.get("phone_key") == content.get("phone_key"):
                for k in ("phone_enc", "phone_masked"):
                    out.pop(k)
            return out

        return Write(
            entity="mediator",
            entity_id=mediator_id,
            content_of=content_of,
            by=by,
            action=action,
            event_for=event,
            hidden=_PII_FIELDS,
            secrets_of=secrets_of,
        )

    async def mediator(self, mediator_id: str, *, access: Access | None) -> MediatorDoc:
        return rules.require_mediator(access, await self.repo.get_mediator(mediator_id))

    async def _editable(self, mediator_id: str, access: Access | None) -> None:
        rules.mediator_edit(access, await self.repo.get_mediator(mediator_id))

    async def set_status(
        self, *, mediator_id: str, change: StatusIn, by: str, access: Access | None = None
    ) -> Filed[MediatorDoc]:
        """Suspend, revoke or reinstate a mediator, with the reason."""
        await self._editable(mediator_id, access)
        return await self._write_mediator(
            mediator_id=mediator_id,
            content_of=_fixed({"status": str(change.status), "status_reason": change.reason}),
            by=by,
            action=f"status:{change.status}",
            access=access,
        )

    async def add_training(
        self, *, mediator_id: str, record: TrainingIn, by: str, access: Access | None = None
    ) -> Filed[MediatorDoc]:
        """Record a training course a mediator attended."""
        await self._editable(mediator_id, access)
        entry = {**record.model_dump(mode="json"), "id": uuid.uuid4().hex[:12], "recorded_by": by}
        return await self._write_mediator(
            mediator_id=mediator_id,
            content_of=_appended("training", entry),
            by=by,
            action="training",
            access=access,
        )

    async def add_discipline(
        self, *, mediator_id: str, record: DisciplineIn, by: str, access: Access | None = None
    ) -> Filed[MediatorDoc]:
        """Record a breach of the five prohibitions and its sanction (a suspension or a
        dismissal takes the mediator off new cases for its period)."""
        errors = discipline_errors(record.sanction, record.starts_on, record.ends_on)
        if errors:
            raise Invalid(errors)
        await self._editable(mediator_id, access)
        entry = {**record.model_dump(mode="json"), "id": uuid.uuid4().hex[:12], "recorded_by": by}
        return await self._write_mediator(
            mediator_id=mediator_id,
            content_of=_appended("discipline", entry),
            by=by,
            action="discipline",
            access=access,
        )

    async def history(self, *, entity: str, entity_id: str) -> list[Document]:
        """Who changed what, when: one entry per version, newest first."""
        store = self.repo.organisation_store if entity == "organisation" else self.repo.mediator_store
        return await self.repo.history_of(entity_id, latest=await store.get(entity_id))

    # -- reporting ---------------------------------------------------------------------------
    async def compliance(self, *, county: str, access: Access | None = None) -> dict[str, Any]:
        """A county's compliance report (of the caller's organisations when its token names
        one); the whole county's gaps also set the compliance gauges."""
        organisations = await self.repo.organisations_in(county)
        mediators = await self.repo.mediators_in(county)
        if access is not None and access.domain is not None:
            organisations = [o for o in organisations if access.acts_for(o.id)]
            mediators = [m for m in mediators if access.sees_mediator(m)]
        report = build_report(
            county=county,
            organisations=organisations,
            mediators=mediators,
            divisions=self.divisions,
            today=self.clock.now().date(),
            settings=ReportSettings(
                expiring_within_days=self.settings.expiring_within_days,
                committee_min=self.settings.committee_min_members,
                committee_max=self.settings.committee_max_members,
            ),
        )
        if access is None or access.domain is None:
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

    async def refresh_due(self) -> None:
        """Refresh the counties changed since the last call, and every county periodically."""
        now = time.monotonic()
        if now - self._last_full_refresh >= self.settings.gauges_refresh_seconds:
            self.dirty_counties.clear()
            await self.refresh_gauges()
            self._last_full_refresh = now
        elif self.dirty_counties:
            counties = sorted(self.dirty_counties)
            self.dirty_counties.clear()
            await self.refresh_gauges(counties)

    async def run_gauges(self) -> None:
        """Refresh the gauges every few seconds until cancelled."""
        await sweep_forever(self.refresh_due, 2.0, what="gauge refresh")

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

    async def _apply_writes(
        self, store: Revisions, writes: Mapping[str, Write]
    ) -> list[tuple[Document, str]]:
        """Apply writes of distinct entities in rounds of one claim command each; record
        their history; each one's stored document and outcome (created, updated, unchanged)."""
        now = self.clock.now()
        ids = list(writes)
        results: dict[str, tuple[Document, str]] = {}
        for start in range(0, len(ids), WRITE_ROUND):
            round_ids = ids[start : start + WRITE_ROUND]
            # Re-decided on the head when unchanged: a lagging snapshot must not swallow a filing.
            outcomes = await store.apply_many(
                {i: self._decider(store, writes[i], now=now) for i in round_ids}, verify_noop=True
            )
            entries: list[Document] = []
            for i in round_ids:
                outcome = outcomes[i]
                if outcome.after is None:  # a training or sanction for a mediator that is not there
                    raise NotFound("调解员", "mediator")
                if not outcome.fresh:
                    results[i] = (outcome.after, "unchanged")
                    continue
                # The entry of the version before too: its writer may have crashed before recording it.
                entries += [s["change"] for s in (outcome.before, outcome.after) if s and s.get("change")]
                results[i] = (outcome.after, "created" if outcome.before is None else "updated")
            await self.repo.record_history(entries)
        return [results[i] for i in ids]

    def _decider(self, store: Revisions, write: Write, *, now: datetime) -> Decide:
        """The engine's decision for one write: the whole next document, its history entry
        and its event, or None when nothing changes."""

        def decide(current: Document | None) -> Change | None:
            content = write.content_of(current)
            if content is None or (
                current is not None and all(current.get(k) == v for k, v in content.items())
            ):
                return None
            version = store.version_of(current) + 1
            fields = {
                **content,
                **(write.secrets_of(current, content) if write.secrets_of else {}),
                "updated_at": now,
                "updated_by": write.by,
            }
            state = {**_without_outbox(current), **fields}
            state["change"] = {
                "_id": f"{write.entity}:{write.entity_id}:v{version}",
                "entity": write.entity,
                "entity_id": write.entity_id,
                "version": version,
                "at": now,
                "by": write.by,
                "action": "create" if current is None else write.action,
                "changes": _diff(current, content, hidden=write.hidden),
            }
            return Change(state, [write.event_for(version, state)])

        return decide


@dataclass(frozen=True)
class Write:
    """One entity's change as filed: what it sets (from the current document), who and why,
    and the event announcing the new version."""

    entity: str
    entity_id: str
    content_of: Callable[[Document | None], Document | None]
    by: str
    action: str
    event_for: Callable[[int, Document], tuple[str, CloudEvent]]
    hidden: frozenset[str]
    secrets_of: Callable[[Document | None, Document], Document] | None = None


def _fixed(content: Document) -> Callable[[Document | None], Document | None]:
    """Content that does not depend on the current document."""
    return lambda current: content


def _registration_check(access: Access | None, data: MediatorIn) -> Callable[[MediatorDoc | None], None]:
    def check(current: MediatorDoc | None) -> None:
        rules.mediator_change(
            access, current=current, county=data.county, organisation_ids=data.organisation_ids
        )

    return check


def _authorised(
    content_of: Callable[[Document | None], Document | None],
    check: Callable[[MediatorDoc | None], object],
) -> Callable[[Document | None], Document | None]:
    """Content decided only after the caller is authorised on the document it replaces."""

    def content(current: Document | None) -> Document | None:
        check(MediatorDoc.model_validate(current) if current is not None else None)
        return content_of(current)

    return content


def _appended(field: str, entry: Document) -> Callable[[Document | None], Document | None]:
    """One record added to a list of the current document (None for a missing one)."""

    def content(current: Document | None) -> Document | None:
        if current is None:
            return None
        return {field: [*(current.get(field) or []), entry]}

    return content


def _without_outbox(current: Document | None) -> Document:
    """The stored document without the outbox fields documents carried before the engine."""
    return {k: v for k, v in (current or {}).items() if k not in _OLD_OUTBOX}


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
