"""The library's rules: nomination (anonymised on arrival), curation by the bureau,
publication behind the personal-data check, search, suggestions, export."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Role
from tiaojie.contracts.envelope import CloudEvent, decode_event, derived_id, new_event
from tiaojie.contracts.intake import CaseEvent, CaseNominated, CaseRegistered, NominatedContent
from tiaojie.contracts.library import (
    EntryDeclined,
    EntryNominated,
    EntryStatus,
    EntryWithdrawn,
    Technique,
)
from tiaojie.library.anonymise import Anonymiser, Finding, find_personal_data, name_fingerprints, parties_of
from tiaojie.library.metrics import LibraryMetrics
from tiaojie.library.models import TEXT_FIELDS, EntryDoc, HistoryEntry
from tiaojie.library.repository import LibraryRepository
from tiaojie.library.search import Filters, Hit, Page, SearchIndex, Segmented
from tiaojie.library.settings import LibrarySettings
from tiaojie.library.tagging import amount_band, case_texts, detect_techniques, working_title
from tiaojie.library.tail import apply_event
from tiaojie.library.text import joined
from tiaojie.runtime.auth import Principal
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.consumer import DeadLetter
from tiaojie.runtime.errors import Conflict, FieldError, IllegalTransition, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import OUTBOX, OUTBOX_AT, OUTBOX_PENDING, OUTBOX_REV, Document
from tiaojie.runtime.pii import Protector
from tiaojie.runtime.revisions import Change, Outcome

SOURCE = topics.service_source("library")
_ENTRY_NS = uuid.UUID("5d0c7a52-8f3e-4c61-a2b4-7e9d1c3f6a80")
log = get_logger(__name__)

CURATORS = frozenset({Role.BUREAU})
# Roles that see every unpublished entry of their counties (others only their own).
REVIEWERS = frozenset({Role.BUREAU, Role.CENTER})

_STATUS_ZH = {
    EntryStatus.NOMINATED: "待审核",
    EntryStatus.PUBLISHED: "已发布",
    EntryStatus.DECLINED: "未采用",
    EntryStatus.WITHDRAWN: "已撤下",
}
_ACTION_ZH = {"edit": "修改", "publish": "发布", "decline": "不予采用", "withdraw": "撤下"}
# The outbox an entry carried in its own document before the storage engine.
_LEGACY_OUTBOX = (OUTBOX, OUTBOX_PENDING, OUTBOX_REV, OUTBOX_AT)
# A case nominated again while in one of these states is only recorded.
_WITH_BUREAU = (EntryStatus.NOMINATED, EntryStatus.PUBLISHED)


def entry_id_for(case_id: str) -> str:
    """One case, one entry: a renomination of the same case reopens the same entry."""
    return str(uuid.uuid5(_ENTRY_NS, case_id))


@dataclass(frozen=True)
class Edit:
    """Fields a curator changes (None: unchanged)."""

    title: str | None = None
    summary: str | None = None
    process: str | None = None
    result: str | None = None
    commentary: str | None = None
    follow_up: str | None = None
    category: Category | None = None
    techniques: list[Technique] | None = None
    outcome: CaseStatus | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Suggestion:
    hit: Hit
    same_category: bool
    shared_techniques: list[str]


def entry_change(
    state: Document | None, after: Document, events: Sequence[tuple[str, CloudEvent]] = ()
) -> Change:
    """An entry's next state with its events, through the engine. An outbox the entry
    carried in its own document (written before the engine) leaves the state and its events
    go out with this change, so none that a crash left unpublished is lost."""
    carried: list[tuple[str, CloudEvent]] = []
    for entry in ((state or {}).get(OUTBOX) or {}).values():
        carried.append((entry["topic"], decode_event(entry["value"])))
    clean = {k: v for k, v in after.items() if k not in _LEGACY_OUTBOX}
    return Change(clean, [*carried, *events])


class LibraryService:
    """The library rules; no Kafka or HTTP in here (an entry's events are part of its
    revision, and the storage engine publishes them)."""

    def __init__(
        self,
        *,
        repository: LibraryRepository,
        protector: Protector,
        index: SearchIndex,
        settings: LibrarySettings,
        clock: Clock,
        metrics: LibraryMetrics,
    ) -> None:
        self.repo = repository
        self.protector = protector
        self.index = index
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.anonymiser = Anonymiser()
        self._adopted = False

    # -- nomination -----------------------------------------------------------------------
    def _decrypt(self, data: CaseNominated) -> NominatedContent:
        try:
            return NominatedContent.model_validate_json(self.protector.decrypt(data.content_enc))
        except (InvalidTag, ValueError, ValidationError) as exc:
            # Not ours to read (another key) or not the agreed shape: retrying cannot help.
            raise DeadLetter("undecryptable_content", detail=type(exc).__name__) from None

    def _name_key(self, name: str) -> str:
        return self.protector.keyed_hash(name, purpose="library-name")

    async def nominate(self, *, event: CloudEvent, data: CaseNominated) -> EntryDoc:
        """Store a nominated case, anonymised; idempotent by event id; a case nominated
        again after it was declined or withdrawn goes back to the bureau."""
        entry_id = entry_id_for(data.case_id)
        existing = await self.repo.get_entry_raw(entry_id)
        if existing is not None and event.id in existing.get("nominations", []):
            return EntryDoc.model_validate(existing)  # redelivered: anonymise nothing again
        content = self._decrypt(data)
        parties = parties_of(content.parties)
        texts = {**case_texts(content), "note": data.note}
        # Anonymise in a worker thread: jieba's tagging takes milliseconds per case.
        anonymised = await asyncio.to_thread(self.anonymiser.anonymise, texts, parties=parties)
        for kind, count in anonymised.replaced.items():
            self.metrics.anonymised.labels(kind).inc(count)
        fields = anonymised.fields
        now = self.clock.now()
        when = data.closed_at or data.received_at
        fresh = EntryDoc(
            id=entry_id,
            case_id=data.case_id,
            county=data.county,
            township=data.township,
            organisation_id=data.organisation_id,
            status=EntryStatus.NOMINATED,
            category=data.category,
            techniques=detect_techniques(fields["process"] + fields["result"] + fields["summary"]),
            outcome=data.outcome,
            amount_band=amount_band(data.amount),
            year=when.year,
            referral_kind=data.referral_kind,
            title=working_title(data.category, data.outcome),
            summary=fields["summary"],
            process=fields["process"],
            result=fields["result"],
            follow_up=fields["follow_up"],
            note=fields["note"],
            nominated_by=data.nominated_by,
            nominated_at=data.nominated_at,
            name_keys=name_fingerprints(parties, self._name_key),
            anonymised=anonymised.replaced,
            nominations=[event.id],
            history=[
                HistoryEntry(
                    at=now,
                    action="nominate",
                    by=data.nominated_by,
                    status=EntryStatus.NOMINATED,
                    note="匿名化后入库",
                )
            ],
        )
        outcome = await self.repo.entry_store.apply(
            entry_id, lambda state: self._nominated(state, fresh, event=event, now=now)
        )
        assert outcome.after is not None
        before = outcome.before
        if outcome.fresh and (before is None or before.get("status") not in _WITH_BUREAU):
            self.metrics.nominations.labels(fresh.county, fresh.category).inc()
        return EntryDoc.model_validate(outcome.after)

    def _nominated(
        self, state: Document | None, fresh: EntryDoc, *, event: CloudEvent, now: datetime
    ) -> Change | None:
        """A nomination: a new entry; the same nomination again changes nothing; a case
        already with the bureau or in the library only records it; a declined or withdrawn
        one goes back to the bureau with the texts of this nomination."""
        version = (int(state.get("version", 0)) if state else 0) + 1
        announced = self._event(
            EntryNominated(
                entry_id=fresh.id,
                version=version,
                county=fresh.county,
                category=fresh.category,
                status=EntryStatus.NOMINATED,
                at=now,
                by=fresh.nominated_by,
                case_id=fresh.case_id,
                organisation_id=fresh.organisation_id,
            ),
            id=derived_id(event.id, "library.nominate"),
            time=now,
        )
        if state is None:
            return entry_change(None, fresh.to_mongo(), [(topics.LIBRARY, announced)])
        current = EntryDoc.model_validate(state)
        if event.id in current.nominations:
            return None
        seen = {"nominations": [*current.nominations, event.id]}
        if current.status in _WITH_BUREAU:
            # Already with the bureau or in the library: record the nomination, change nothing.
            step = HistoryEntry(
                at=now,
                action="renominate",
                by=fresh.nominated_by,
                status=current.status,
                note="重复推荐，已在审核或已发布",
            )
            return entry_change(state, {**state, **seen, "history": _with_step(state, step)})
        replace = fresh.to_mongo()
        for key in ("_id", "history", "nominations", "version", "published_at", "published_by"):
            replace.pop(key, None)
        step = HistoryEntry(
            at=now, action="renominate", by=fresh.nominated_by, status=EntryStatus.NOMINATED, note="再次推荐"
        )
        after = {**state, **replace, **seen, "history": _with_step(state, step)}
        return entry_change(state, after, [(topics.LIBRARY, announced)])

    async def adopt_legacy_outboxes(self) -> int:
        """Hand the events entries still carried in their own outbox (written before the
        engine, left by a crash) to the engine, which publishes them; returns entries adopted."""
        adopted = 0
        for entry_id in await self.repo.legacy_outbox_ids():

            def decide(state: Document | None) -> Change | None:
                if state is None or not any(k in state for k in _LEGACY_OUTBOX):
                    return None
                return entry_change(state, state)

            adopted += (await self.repo.entry_store.apply(entry_id, decide)).fresh
        if adopted:
            log.info("legacy outboxes adopted", entries=adopted)
        return adopted

    async def sweep(self) -> None:
        """The periodic sweep: legacy outboxes once, then unsettled revisions every time."""
        if not self._adopted:
            await self.adopt_legacy_outboxes()
            self._adopted = True
        await self.repo.sweep()

    # -- visibility -----------------------------------------------------------------------
    async def get(self, *, entry_id: str, principal: Principal) -> EntryDoc:
        """An entry the caller may see: published ones to all staff, unpublished ones only
        within the caller's counties (404 otherwise, indistinguishable from absent)."""
        entry = await self.repo.get_visible_entry(
            entry_id,
            counties=principal.counties,
            subject=principal.subject,
            all_in_county=principal.role in REVIEWERS,
        )
        if entry is None:
            raise NotFound("案例", "library entry")
        return entry

    async def list_entries(
        self, *, principal: Principal, status: EntryStatus | None, county: str | None
    ) -> list[EntryDoc]:
        """The curation queue and past decisions of the caller's counties."""
        counties = [c for c in principal.counties if county is None or c == county]
        return await self.repo.list_entries(
            counties=counties,
            status=status,
            subject=principal.subject,
            all_in_county=principal.role in REVIEWERS,
            limit=self.settings.curation_list_limit,
        )

    # -- curation -------------------------------------------------------------------------
    async def _curated(self, *, entry_id: str, principal: Principal, action: str) -> EntryDoc:
        if principal.role not in CURATORS:
            raise _forbidden(action)
        entry = await self.repo.get_entry(entry_id)
        if entry is None or entry.county not in principal.counties:
            raise NotFound("案例", "library entry")
        return entry

    def check(self, entry: EntryDoc, fields: Iterable[str] = TEXT_FIELDS) -> list[Finding]:
        """Personal data still in these fields of an entry (the parties' names included)."""
        keys = set(entry.name_keys)
        texts = {name: getattr(entry, name) for name in fields}
        return find_personal_data(texts, known_name=lambda s: self._name_key(s) in keys)

    def _refuse(self, findings: list[Finding]) -> Invalid:
        for f in findings:
            self.metrics.refused.labels(f.field, f.kind).inc()
        return Invalid(
            [
                FieldError(
                    field=f.field,
                    code="personal_data",
                    zh=f"仍含个人信息（{f.zh}），请删除或替换后再提交",
                    en=f"still contains personal data ({f.en}); remove or replace it first",
                )
                for f in findings
            ]
        )

    async def _curate(
        self,
        *,
        entry_id: str,
        principal: Principal,
        action: str,
        decide: Callable[[EntryDoc, Document], Awaitable[Change | None]],
    ) -> EntryDoc:
        """Apply a curation step through the engine: `decide` gets the entry as stored (the
        head again after a lost claim, so a client's stale version is seen there) and
        returns the change or None; the step is counted and indexed once it is written."""
        await self._curated(entry_id=entry_id, principal=principal, action=action)  # 403/404 first

        async def on(state: Document | None) -> Change | None:
            if state is None:
                raise NotFound("案例", "library entry")
            current = EntryDoc.model_validate(state)
            if current.county not in principal.counties:
                raise NotFound("案例", "library entry")
            return await decide(current, state)

        outcome = await self.repo.entry_store.apply(entry_id, on)
        assert outcome.after is not None
        after = EntryDoc.model_validate(outcome.after)
        if outcome.fresh:
            self.metrics.curation.labels(action, after.county).inc()
            if _announced(outcome):
                await self._index(after)
        return after

    async def edit(self, *, entry_id: str, principal: Principal, edit: Edit, version: int | None) -> EntryDoc:
        """The bureau edits texts and tags; personal data typed in is refused (422 naming the
        field); an edit of a published case republishes it."""
        changes = edit.changes()
        now = self.clock.now()

        async def decide(current: EntryDoc, state: Document) -> Change | None:
            if current.status not in (EntryStatus.NOMINATED, EntryStatus.PUBLISHED):
                raise IllegalTransition(
                    current=current.status, action="edit", current_zh=_STATUS_ZH[current.status]
                )
            _expect(current, version)
            if not changes:
                return None
            changed_texts = [k for k in changes if k in TEXT_FIELDS]
            edited = current.model_copy(update=changes)
            findings = await asyncio.to_thread(self.check, edited, changed_texts)
            if findings:
                raise self._refuse(findings)
            errors = _required_texts(edited)
            if errors:
                raise Invalid(errors)
            after: Document = {**state, **_mongo_values(changes)}
            events: list[tuple[str, CloudEvent]] = []
            if current.status == EntryStatus.PUBLISHED:
                edited = edited.model_copy(update={"version": current.version + 1})
                seg = await asyncio.to_thread(_segment, edited, now, principal.subject)
                after.update(summary_terms=joined(seg.summary_terms), record_terms=joined(seg.record_terms))
                events.append((topics.LIBRARY, self._event(seg.entry, time=now)))
            step = HistoryEntry(
                at=now, action="edit", by=principal.subject, status=current.status, changed=sorted(changes)
            )
            return entry_change(state, {**after, "history": _with_step(state, step)}, events)

        return await self._curate(entry_id=entry_id, principal=principal, action="edit", decide=decide)

    async def publish(self, *, entry_id: str, principal: Principal, version: int | None) -> EntryDoc:
        """Publish a nominated (or withdrawn) case: only the bureau, only when no personal
        data remains in any field."""
        now = self.clock.now()

        async def decide(current: EntryDoc, state: Document) -> Change | None:
            if current.status not in (EntryStatus.NOMINATED, EntryStatus.WITHDRAWN):
                raise IllegalTransition(
                    current=current.status, action="publish", current_zh=_STATUS_ZH[current.status]
                )
            _expect(current, version)
            findings = await asyncio.to_thread(self.check, current)
            if findings:
                raise self._refuse(findings)
            errors = _required_texts(current)
            if errors:
                raise Invalid(errors)
            published = current.model_copy(
                update={
                    "version": current.version + 1,
                    "status": EntryStatus.PUBLISHED,
                    "published_at": now,
                    "published_by": principal.subject,
                }
            )
            seg = await asyncio.to_thread(_segment, published, now, principal.subject)
            step = HistoryEntry(at=now, action="publish", by=principal.subject, status=EntryStatus.PUBLISHED)
            after = {
                **state,
                "status": str(EntryStatus.PUBLISHED),
                "published_at": now,
                "published_by": principal.subject,
                "summary_terms": joined(seg.summary_terms),
                "record_terms": joined(seg.record_terms),
                "history": _with_step(state, step),
            }
            return entry_change(state, after, [(topics.LIBRARY, self._event(seg.entry, time=now))])

        return await self._curate(entry_id=entry_id, principal=principal, action="publish", decide=decide)

    async def decline(
        self, *, entry_id: str, principal: Principal, reason: str, version: int | None
    ) -> EntryDoc:
        """Decline a nomination (未采用), with a reason the nominator sees."""
        return await self._close(
            entry_id=entry_id,
            principal=principal,
            reason=reason,
            version=version,
            action="decline",
            allowed=(EntryStatus.NOMINATED,),
            to=EntryStatus.DECLINED,
        )

    async def withdraw(
        self, *, entry_id: str, principal: Principal, reason: str, version: int | None
    ) -> EntryDoc:
        """Take a published case out of the library (撤下)."""
        return await self._close(
            entry_id=entry_id,
            principal=principal,
            reason=reason,
            version=version,
            action="withdraw",
            allowed=(EntryStatus.PUBLISHED,),
            to=EntryStatus.WITHDRAWN,
        )

    async def _close(
        self,
        *,
        entry_id: str,
        principal: Principal,
        reason: str,
        version: int | None,
        action: str,
        allowed: tuple[EntryStatus, ...],
        to: EntryStatus,
    ) -> EntryDoc:
        now = self.clock.now()
        model = EntryDeclined if to == EntryStatus.DECLINED else EntryWithdrawn

        async def decide(current: EntryDoc, state: Document) -> Change | None:
            if current.status not in allowed:
                raise IllegalTransition(
                    current=current.status, action=action, current_zh=_STATUS_ZH[current.status]
                )
            _expect(current, version)
            findings = await asyncio.to_thread(find_personal_data, {"reason": reason})
            if findings:
                raise self._refuse(findings)
            payload = model(
                entry_id=current.id,
                version=current.version + 1,
                county=current.county,
                category=current.category,
                status=to,
                at=now,
                by=principal.subject,
                reason=reason,
            )
            step = HistoryEntry(at=now, action=action, by=principal.subject, status=to, note=reason)
            after = {**state, "status": str(to), "history": _with_step(state, step)}
            return entry_change(state, after, [(topics.LIBRARY, self._event(payload, time=now))])

        return await self._curate(entry_id=entry_id, principal=principal, action=action, decide=decide)

    # -- events and the index ---------------------------------------------------------------
    def _event(self, data: Any, *, time: datetime, id: str | None = None) -> CloudEvent:
        return new_event(data, source=SOURCE, subject=data.entry_id, county=data.county, id=id, time=time)

    async def _index(self, entry: EntryDoc) -> None:
        """Apply our own change to this replica's index at once (read-your-writes); the other
        replicas get it from the topic."""
        if entry.status == EntryStatus.PUBLISHED:
            case = Segmented(
                entry=entry.published_event(
                    at=entry.published_at or self.clock.now(), by=entry.published_by or ""
                ),
                summary_terms=entry.summary_terms.split(),
                record_terms=entry.record_terms.split(),
            )
            await asyncio.to_thread(self.index.apply, case, entry_id=entry.id, version=entry.version)
        else:
            await asyncio.to_thread(self.index.apply, None, entry_id=entry.id, version=entry.version)
        self.metrics.index_entries.set(self.index.size)

    async def load_index(self) -> int:
        """Build this replica's index from the published entries (start-up)."""
        started = time.perf_counter()
        loaded = await load_published(self.index, self.repo.published())
        self.metrics.index_entries.set(self.index.size)
        log.info("index loaded", entries=loaded, seconds=round(time.perf_counter() - started, 2))
        return loaded

    async def apply_library_event(self, event: CloudEvent) -> str:
        """Apply an event of the library's topic to this replica's index (the tail)."""
        outcome = await apply_event(self.index, event)
        if outcome == "applied":
            self.metrics.index_entries.set(self.index.size)
        return outcome

    # -- search and suggestions -------------------------------------------------------------
    async def search(self, *, text: str, filters: Filters, limit: int, offset: int) -> Page:
        """Published cases ranked by relevance (BM25 over summary and record), filtered."""
        started = time.perf_counter()
        page = await asyncio.to_thread(self.index.search, text, filters, limit=limit, offset=offset)
        self.metrics.query_seconds.labels("search").observe(time.perf_counter() - started)
        return page

    async def suggest(
        self,
        *,
        case_id: str,
        principal: Principal,
        description: str = "",
        techniques: tuple[Technique, ...] = (),
    ) -> list[Suggestion]:
        """The published cases most like an open case of the caller's counties."""
        case = await self.repo.get_open_case(case_id)
        if case is None or case.county not in principal.counties:
            raise NotFound("案件", "case")
        started = time.perf_counter()
        hits = await asyncio.to_thread(
            self.index.similar,
            description,
            category=case.category,
            techniques=techniques,
            limit=self.settings.suggestions,
            exclude={entry_id_for(case_id)},
        )
        self.metrics.query_seconds.labels("suggest").observe(time.perf_counter() - started)
        wanted = {str(t) for t in techniques}
        return [
            Suggestion(
                hit=h,
                same_category=h.category == str(case.category),
                shared_techniques=[t for t in h.techniques if t in wanted],
            )
            for h in hits
        ]

    # -- open cases (from intake's events) ----------------------------------------------------
    async def project_cases(self, *, events: Sequence[tuple[CaseRegistered | CaseEvent, datetime]]) -> None:
        """What the library knows of open cases, from a batch of intake's events: each
        case's events folded in order, all cases written in one round."""
        by_case: dict[str, list[tuple[CaseRegistered | CaseEvent, datetime]]] = {}
        for data, at in events:
            by_case.setdefault(data.case_id, []).append((data, at))
        decisions = {case_id: _open_case_decision(steps) for case_id, steps in by_case.items()}
        await self.repo.open_case_store.apply_many(decisions, verify_noop=True)


def _open_case_fields(data: CaseRegistered | CaseEvent) -> tuple[Document, bool]:
    """What one event says of an open case, and whether it may create the record."""
    if isinstance(data, CaseRegistered):
        return {
            "county": data.county,
            "township": data.township,
            "category": str(data.category),
            "amount": data.amount,
            "status": str(CaseStatus.RECEIVED),
        }, True
    fields: dict[str, Any] = {"county": data.county, "status": str(data.status)}
    if data.category is not None:
        fields["category"] = str(data.category)
    if data.township is not None:
        fields["township"] = data.township
    # Without a category there is nothing to rank by: wait for an event that says what the case is.
    return fields, data.category is not None


def _open_case_decision(
    steps: Sequence[tuple[CaseRegistered | CaseEvent, datetime]],
) -> Callable[[Document | None], Change | None]:
    """Fold a case's events into its record whatever their order: the latest event (by its
    time) says where the case is, an earlier one only fills gaps; a redelivery changes
    nothing and writes nothing."""

    def decide(state: Document | None) -> Change | None:
        current = state
        for data, at in steps:
            fields, creates = _open_case_fields(data)
            if current is None and not creates:
                continue
            was = current or {}
            latest = was.get("updated_at") is None or at >= was["updated_at"]
            given = {k: v for k, v in fields.items() if v is not None or k not in was}
            if latest:
                current = {**was, **given, "updated_at": at}
            else:
                current = {**was, **{k: v for k, v in given.items() if was.get(k) is None}}
        if current is None or current == state:
            return None
        return Change(current)

    return decide


async def load_published(index: SearchIndex, entries: AsyncIterator[EntryDoc], *, batch: int = 2000) -> int:
    """Index published entries as they are read, a batch at a time (memory stays bounded)."""
    pending: list[Segmented] = []
    loaded = 0
    async for entry in entries:
        at = entry.published_at or entry.nominated_at
        pending.append(
            Segmented(
                entry=entry.published_event(at=at, by=entry.published_by or ""),
                summary_terms=entry.summary_terms.split(),
                record_terms=entry.record_terms.split(),
            )
        )
        if len(pending) >= batch:
            loaded += await asyncio.to_thread(index.load, pending)
            pending = []
    return loaded + await asyncio.to_thread(index.load, pending)


def _with_step(state: Document, step: HistoryEntry) -> list[Any]:
    """The entry's history with one more step (the history is part of the state)."""
    return [*(state.get("history") or []), step.model_dump(mode="python")]


def _segment(entry: EntryDoc, at: datetime, by: str) -> Segmented:
    return Segmented.of(entry.published_event(at=at, by=by))


def _mongo_values(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, str):
            out[key] = str(value)
        else:
            out[key] = value
    return out


def _required_texts(entry: EntryDoc) -> list[FieldError]:
    errors = []
    for name, zh in (("title", "标题"), ("summary", "基本案情"), ("result", "调解结果")):
        if not getattr(entry, name).strip():
            errors.append(FieldError(name, "required", f"{zh}不能为空", f"{name} must not be empty"))
    return errors


def _expect(current: EntryDoc, version: int | None) -> None:
    """A client's expected version against the stored one: 409 when it changed meanwhile."""
    if version is not None and version != current.version:
        raise _stale(current.version)


def _announced(outcome: Outcome) -> bool:
    """Whether a written curation step changed what the index shows (it announced an event)."""
    before, after = outcome.before or {}, outcome.after or {}
    return before.get("status") == str(EntryStatus.PUBLISHED) or after.get("status") == str(
        EntryStatus.PUBLISHED
    )


def _forbidden(action: str) -> Exception:
    from tiaojie.runtime.errors import Forbidden

    return Forbidden(
        f"只有司法局用户可以{_ACTION_ZH.get(action, action)}案例",
        f"only bureau users may {action} library entries",
    )


def _stale(current: int) -> Conflict:
    return Conflict(
        "案例已被他人修改，请刷新后重试",
        "the entry was changed by someone else; reload and retry",
        current_version=current,
    )
