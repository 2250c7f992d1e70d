"""Stats rules: idempotent projections of every event, the figures built from them, and
individual alerts (grave risk, repeat disputes). No Kafka or HTTP in here: every change is
decided by a pure function of the stored state and applied by the storage engine, which
publishes an alert change's events with it (`tiaojie.runtime.revisions`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, RiskLevel
from tiaojie.contracts.envelope import EventData, derived_id, new_event
from tiaojie.contracts.intake import CaseRegistered, RiskRaised
from tiaojie.contracts.registry import MediatorUpdated, OrganisationUpdated
from tiaojie.contracts.stats import AlertKind, RelatedCase, RiskAlertCleared, RiskAlertRaised
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.errors import NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change, Decide
from tiaojie.stats import figures
from tiaojie.stats.calendar import local_day
from tiaojie.stats.metrics import StatsMetrics
from tiaojie.stats.projection import (
    STAGES,
    apply_case_event,
    apply_handover_event,
    response_seconds,
    stage_seconds,
)
from tiaojie.stats.repository import PartyRecord, StatsRepository, months_between
from tiaojie.stats.settings import StatsSettings

SOURCE = topics.service_source("stats")
log = get_logger(__name__)
_COUNT_FIELDS = ("received_day", "county", "township", "category")
_CLOSED = frozenset(
    {CaseStatus.REJECTED, CaseStatus.RESOLVED, CaseStatus.FAILED, CaseStatus.WITHDRAWN, CaseStatus.ARCHIVED}
)


# Not shown by the API (the outbox fields only on alerts written before the engine;
# `version` is the engine's count of the alert's changes).
_NOT_SHOWN = frozenset({"_id", "related", "outbox", "outbox_rev", "outbox_pending", "outbox_at", "version"})
# Bookkeeping fields that are not facts (ignored when deciding whether anything changed).
# `counted` is False on a revision that moved a case's daily-count fields.
_BOOKKEEPING = frozenset({"_id", "rev", "counted"})


def same_facts(before: Document | None, after: Document) -> bool:
    if before is None:
        return False
    keys = (set(before) | set(after)) - _BOOKKEEPING
    return all(before.get(k) == after.get(k) for k in keys)


def projection_change(
    rule: Callable[[Document | None], Document], *, counts: bool
) -> Callable[[Document | None], Change | None]:
    """The decision of a projection: the rule applied to the stored document, None when it
    changes no fact; on a case (`counts`), `counted: False` when it moves the fields the
    daily counts are made of (new, or another day or place)."""

    def decide(before: Document | None) -> Change | None:
        after = rule(before)
        after.pop("counted", None)
        if same_facts(before, after):
            return None
        if counts and (before is None or any(before.get(k) != after.get(k) for k in _COUNT_FIELDS)):
            after["counted"] = False  # the daily counts of its day(s) must be redone
        return Change(after)

    return decide


def _folding(events: Sequence[EventData]) -> Callable[[Document | None], Document]:
    """The rule of a case's events of one batch: each applied in its order."""

    def rule(doc: Document | None) -> Document:
        for data in events:
            doc = apply_case_event(doc, data)
        assert doc is not None
        return doc

    return rule


def party_info(case: Document) -> Document:
    """What the party index keeps of a case (no personal data: keys are keyed hashes)."""
    return {
        "county": case.get("county"),
        "township": case.get("township"),
        "category": case.get("category"),
        "organisation_id": case.get("organisation_id"),
        "received_at": case["received_at"],
    }


def repeat_of(
    record: PartyRecord, index: Mapping[str, Mapping[str, Document]], *, min_shared: int, window: timedelta
) -> tuple[Document, list[RelatedCase]] | None:
    """The repeat dispute a case recorded under its party keys belongs to: the later case
    of the group (with its place) and the others, when it shares at least `min_shared` keys
    with cases registered within `window` of it and they are held by different organisations."""
    shared: dict[str, int] = {}
    known: dict[str, Document] = {record.case_id: record.info}
    for key in record.keys:
        for other_id, other in (index.get(key) or {}).items():
            if other_id != record.case_id:
                shared[other_id] = shared.get(other_id, 0) + 1
                known[other_id] = other
    received = record.info["received_at"]
    matches = [
        other_id
        for other_id, n in shared.items()
        if n >= min_shared
        and known[other_id].get("received_at") is not None
        and abs(known[other_id]["received_at"] - received) <= window
    ]
    organisations = {known[i].get("organisation_id") for i in [record.case_id, *matches]} - {None}
    if not matches or len(organisations) < 2:
        return None  # the same body already holds every one of them: not across agencies
    group = sorted([record.case_id, *matches], key=lambda i: (known[i]["received_at"], i))
    related = [
        RelatedCase(
            case_id=i,
            county=known[i].get("county") or "",
            organisation_id=known[i].get("organisation_id"),
            received_at=known[i]["received_at"],
        )
        for i in group[:-1]
    ]
    return {**known[group[-1]], "_id": group[-1]}, related


_RAISE, _CLEAR = 0, 1


@dataclass
class AlertPlan:
    """The alert changes a batch of case events causes, per alert."""

    steps: dict[str, list[tuple[int, Document, Any]]] = field(default_factory=dict)
    clearing: set[str] = field(default_factory=set)

    def add(self, doc: Document, event: Any) -> None:
        """Raise `doc` with `event` (or add the related cases it lists to the raised alert)."""
        self.steps.setdefault(doc["_id"], []).append((_RAISE, doc, event))

    def clear(self, alert_id: str, fields: Document, event: Any) -> None:
        """Move the alert, if active, to `fields`, announcing `event`."""
        self.steps.setdefault(alert_id, []).append((_CLEAR, fields, event))
        self.clearing.add(alert_id)

    def decision(self, alert_id: str, events_of: Callable[[Any], list[tuple[str, Any]]]) -> Decide:
        """The alert's next state: every raise (once, then only related cases not listed
        yet), then every clear of an active alert, as handling the events one by one would."""
        steps = sorted(self.steps[alert_id], key=lambda step: step[0])

        def decide(state: Document | None) -> Change | None:
            current, events, changed = state, [], False
            for kind, doc, event in steps:
                if kind == _RAISE and current is None:
                    current, changed = doc, True
                    events += events_of(event)
                elif kind == _RAISE and current is not None:
                    known = current.get("related") or {}
                    missing = {k: v for k, v in (doc.get("related") or {}).items() if k not in known}
                    if missing:
                        current, changed = {**current, "related": {**known, **missing}}, True
                elif kind == _CLEAR and current is not None and current.get("status") == "active":
                    current, changed = {**current, **doc}, True
                    events += events_of(event)
            return Change(current, events) if changed and current is not None else None

        return decide


class StatsService:
    def __init__(
        self,
        *,
        repository: StatsRepository,
        metrics: StatsMetrics,
        clock: Clock,
        settings: StatsSettings,
        publish_alerts: bool = True,
    ) -> None:
        self.repo = repository
        self.metrics = metrics
        self.clock = clock
        self.settings = settings
        # False when rebuilding: the live service already published every alert event.
        self.publish_alerts = publish_alerts

    # -- projections ---------------------------------------------------------------------------
    async def case_events(self, *, events: Sequence[EventData]) -> None:
        """Project a batch of case events (intake's lifecycle, the registry's assignment
        failures), each case's in their order: one engine round for all of its cases, then
        the batch's recount marks, party records and alert changes together.

        A no-op decided on a snapshot is confirmed on the head of the revision log (a
        snapshot a crash left behind may need rolling forward). Recount marks are written
        after the snapshots (a recount must see a case where it now is), and again whenever
        the head says its day(s) were moved; alerts are raised and cleared from the states
        the events led to, also on a no-op: a crash between the projection and its derived
        writes is repaired by the redelivery of the events."""
        by_case: dict[str, list[EventData]] = {}
        for data in events:
            by_case.setdefault(str(data.case_id), []).append(data)  # type: ignore[attr-defined]
        outcomes = await self.repo.case_store.apply_many(
            {case_id: projection_change(_folding(batch), counts=True) for case_id, batch in by_case.items()},
            verify_noop=True,
        )
        marks: list[tuple[str, int, list[str | None]]] = []
        repeats: list[tuple[Document, int]] = []
        plan = AlertPlan()
        for case_id, batch in by_case.items():
            outcome = outcomes[case_id]
            after = outcome.after
            assert after is not None  # a case rule always yields a document
            if outcome.fresh:
                self._observe_case(outcome.before or {}, after)
            if after.get("counted") is False:
                moved_from = (outcome.before or {}).get("received_day") if outcome.fresh else None
                marks.append((case_id, int(after["rev"]), [after.get("received_day"), moved_from]))
            # The case as each event left it (folded again from the state the revision was
            # decided on), so an alert says what the case was when its cause arrived.
            state = outcome.before
            party_state: Document | None = None
            for data in batch:
                state = apply_case_event(state, data)
                if isinstance(data, CaseRegistered | RiskRaised) and data.party_keys:
                    party_state = None if state.get("duplicate_of") else state
                if isinstance(data, RiskRaised) and data.risk_level == RiskLevel.GRAVE:
                    plan.add(
                        *self._case_alert(
                            AlertKind.GRAVE_RISK, {**state, "_id": case_id}, data.at, list(data.signals), []
                        )
                    )
            if party_state is not None:
                repeats.append(({**party_state, "_id": case_id}, int(after.get("rev", 0))))
            if after.get("status") in _CLOSED:
                for alert_id, fields, event in self._case_alert_clears(after):
                    plan.clear(alert_id, fields, event)
        await self.repo.mark_recounts(marks)
        for doc, event in await self._repeats(repeats):
            plan.add(doc, event)
        await self._apply_alerts(plan)

    async def handover_event(self, *, data: EventData, handover_id: str) -> None:
        """Project a referral or transfer event."""
        outcome = await self.repo.handover_store.apply(
            handover_id,
            projection_change(lambda doc: apply_handover_event(doc, data), counts=False),
            verify_noop=True,
        )
        after = outcome.after
        if outcome.fresh and after is not None and after.get("kind") == "referral":
            seconds = response_seconds(after)
            if seconds is not None and response_seconds(outcome.before or {}) is None:
                kind = str(after.get("agency_kind") or figures.INTERNAL)
                self.metrics.referral_response_seconds.labels(kind, after.get("county", "")).observe(seconds)

    async def organisation_updated(self, *, data: OrganisationUpdated) -> None:
        fields = data.model_dump(mode="json", exclude={"organisation_id", "version"})
        await self._registry_snapshot("organisation", data.organisation_id, data.version, fields)

    async def mediator_updated(self, *, data: MediatorUpdated) -> None:
        fields = data.model_dump(mode="json", exclude={"mediator_id", "version"})
        await self._registry_snapshot("mediator", data.mediator_id, data.version, fields)

    async def _registry_snapshot(self, kind: str, doc_id: str, version: int, fields: Document) -> None:
        """Keep the registry's newest snapshot: an older or equal `version` (a redelivery,
        a reordering) changes nothing."""

        def decide(state: Document | None) -> Change | None:
            if state is not None and int(state.get("version", 0)) >= version:
                return None
            return Change({**(state or {}), **fields, "version": version})

        await self.repo.registry_store(kind).apply(doc_id, decide, verify_noop=True)

    def _observe_case(self, before: Document, after: Document) -> None:
        """Counters and histograms move on first transitions only."""
        county = after.get("county") or "unknown"
        if before.get("received_at") is None and after.get("received_at") is not None:
            self.metrics.received.labels(
                county, after.get("channel") or "unknown", after.get("category") or "other"
            ).inc()
        for stage in STAGES:
            if stage_seconds(before, stage) is None:
                seconds = stage_seconds(after, stage)
                if seconds is not None:
                    self.metrics.stage_seconds.labels(stage, county).observe(seconds)
        if before.get("concluded_at") is None and after.get("concluded_at") is not None:
            outcome = "resolved" if after.get("resolved_at") == after["concluded_at"] else "failed"
            self.metrics.concluded.labels(county, outcome).inc()
            if after.get("mediation_due") is not None:
                late = after["concluded_at"] > after["mediation_due"]
                self.metrics.deadlines.labels(county, "mediation", "late" if late else "on_time").inc()
        accepted_now = before.get("accepted_at") is None and after.get("accepted_at") is not None
        if accepted_now and after.get("acceptance_due") is not None:
            late = after["accepted_at"] > after["acceptance_due"]
            self.metrics.deadlines.labels(county, "acceptance", "late" if late else "on_time").inc()

    # -- individual alerts -----------------------------------------------------------------------
    async def _repeats(self, cases: Sequence[tuple[Document, int]]) -> list[tuple[Document, Any]]:
        """Same parties (by keyed hash) in another case at another organisation: the alert
        of each such group (on the later of its cases, listing the others). The batch's
        cases are recorded under their keys together and every key is read once."""
        records = [
            PartyRecord(keys=list(case["party_keys"]), case_id=case["_id"], rev=rev, info=party_info(case))
            for case, rev in cases
            if len(case.get("party_keys") or []) >= self.settings.repeat_min_shared_parties
            and case.get("received_at") is not None
        ]
        if not records:
            return []
        index = await self.repo.add_party_cases(records)
        found = []
        for record in records:
            match = repeat_of(
                record,
                index,
                min_shared=self.settings.repeat_min_shared_parties,
                window=timedelta(days=self.settings.repeat_window_days),
            )
            if match is not None:
                target, related = match
                found.append(
                    self._case_alert(
                        AlertKind.REPEAT_DISPUTE, target, target["received_at"], ["same_parties"], related
                    )
                )
        return found

    def _case_alert(
        self, kind: str, case: Document, at: datetime, signals: list[str], related: list[RelatedCase]
    ) -> tuple[Document, Any]:
        """An alert on a case, as raised: its document and its event."""
        alert_id = f"{kind}:{case['_id']}"
        county = case.get("county") or ""
        payload = RiskAlertRaised(
            alert_id=alert_id,
            kind=kind,
            case_id=case["_id"],
            county=county,
            township=case.get("township"),
            category=case.get("category"),
            organisation_id=case.get("organisation_id"),
            risk_level=RiskLevel.GRAVE if kind == AlertKind.GRAVE_RISK else None,
            signals=signals,
            related=related,
            raised_at=at,
        )
        doc: Document = {
            "_id": alert_id,
            "kind": kind,
            "status": "active",
            "county": county,
            "township": case.get("township"),
            "category": case.get("category"),
            "case_id": case["_id"],
            "organisation_id": case.get("organisation_id"),
            "signals": signals,
            "related": {r.case_id: r.model_dump(mode="python") for r in related},
            "raised_at": at,
            "detected_on": local_day(at).isoformat(),
        }
        event = new_event(
            payload,
            source=SOURCE,
            subject=alert_id,
            county=county,
            id=derived_id(alert_id, "raised"),
            time=at,
        )
        return doc, event

    def _case_alert_clears(self, case: Document) -> list[tuple[str, Document, Any]]:
        """The changes that clear the alerts a closed case can have: a grave-risk alert
        only once its risk was grave (the level only rises, in the revision that raises
        the alert), a repeat alert only with enough party keys (the later case of a group
        shares them); no alert of a case without either is looked for."""
        at = case.get("status_at") or self.clock.now()
        kinds = []
        if case.get("risk_level") == RiskLevel.GRAVE:
            kinds.append(AlertKind.GRAVE_RISK)
        if len(case.get("party_keys") or []) >= self.settings.repeat_min_shared_parties:
            kinds.append(AlertKind.REPEAT_DISPUTE)
        out = []
        for kind in kinds:
            alert_id = f"{kind}:{case['_id']}"
            event = new_event(
                RiskAlertCleared(
                    alert_id=alert_id,
                    kind=kind,
                    case_id=case["_id"],
                    county=case.get("county") or "",
                    outcome=case.get("status") or "",
                    cleared_at=at,
                ),
                source=SOURCE,
                subject=alert_id,
                county=case.get("county"),
                id=derived_id(alert_id, "cleared"),
                time=at,
            )
            out.append(
                (alert_id, {"status": "cleared", "cleared_at": at, "outcome": case.get("status")}, event)
            )
        return out

    async def _apply_alerts(self, plan: AlertPlan) -> None:
        """Every alert change of a batch in one engine round per kind of decision: raises
        and merges decided on the snapshot, anything that clears confirmed on the head (a
        snapshot a crash left behind might not show the alert active yet)."""
        rounds = [
            ({i: plan.decision(i, self._alert_events) for i in plan.steps if i not in plan.clearing}, False),
            ({i: plan.decision(i, self._alert_events) for i in plan.clearing}, True),
        ]
        for decisions, verify in rounds:
            if not decisions:
                continue
            outcomes = await self.repo.alert_store.apply_many(decisions, verify_noop=verify)
            for outcome in outcomes.values():
                if outcome.fresh and outcome.before is None and outcome.after is not None:
                    after = outcome.after
                    self.metrics.alerts_raised.labels(after.get("county") or "", after["kind"]).inc()

    async def raise_alert(self, doc: Document, event: Any) -> bool:
        """Raise an alert with its event, once: True if this call raised it. Version 1 of
        the alert is claimed by one insert, so of any number of concurrent or redelivered
        handlers exactly one raises and announces it. An alert raised already gets the
        related cases it does not list yet (nothing is written when it lists them all, so a
        redelivery never rewrites it)."""

        def decide(state: Document | None) -> Change | None:
            if state is None:
                return Change(doc, self._alert_events(event))
            known = state.get("related") or {}
            missing = {k: v for k, v in (doc.get("related") or {}).items() if k not in known}
            return Change({**state, "related": {**known, **missing}}) if missing else None

        outcome = await self.repo.alert_store.apply(doc["_id"], decide)
        raised = outcome.fresh and outcome.before is None
        if raised:
            self.metrics.alerts_raised.labels(doc.get("county") or "", doc["kind"]).inc()
        return raised

    def _alert_events(self, event: Any) -> list[tuple[str, Any]]:
        """An alert change's events (none when rebuilding: the live service published them)."""
        return [(topics.ALERTS, event)] if self.publish_alerts else []

    async def change_alert(self, alert_id: str, fields: Document, event: Any) -> bool:
        """Move an active alert to `fields` and announce `event`, once: True if this call
        did. Decided on the head (a snapshot a crash left behind might not show the alert
        active yet), claimed by one insert: the fields and the event go together."""

        def decide(state: Document | None) -> Change | None:
            if state is None or state.get("status") != "active":
                return None
            return Change({**state, **fields}, self._alert_events(event))

        outcome = await self.repo.alert_store.apply(alert_id, decide, verify_noop=True)
        return outcome.fresh

    # -- figures -------------------------------------------------------------------------------
    async def summary(
        self,
        *,
        counties: Sequence[str],
        township: str | None = None,
        category: str | None = None,
        first: date | None = None,
        last: date | None = None,
    ) -> Document:
        """The summary figures over the caller's counties (see tiaojie.stats.figures)."""
        now = self.clock.now()
        months = months_between(first, last or local_day(now)) if first is not None else None
        period = figures.Period(first, last)
        cases = await self.repo.cases_for(counties, months=months, township=township, category=category)
        handovers = [
            h
            for h in await self.repo.handovers_for(counties, months=months)
            if (township is None or h.get("township") == township)
            and (category is None or h.get("category") == category)
        ]
        open_cases = [
            c
            for c in await self.repo.open_cases(counties)
            if (township is None or c.get("township") == township)
            and (category is None or c.get("category") == category)
        ]
        return {
            "counties": list(counties),
            "township": township,
            "category": category,
            "from": first.isoformat() if first else None,
            "to": last.isoformat() if last else None,
            "as_of": now.isoformat(),
            **figures.case_figures(cases, period),
            **figures.backlog_figures(open_cases, now),
            "referrals": figures.referral_figures(handovers, period),
        }

    async def alerts(
        self, *, counties: Sequence[str], kind: str | None, status: str | None, limit: int
    ) -> list[Document]:
        """Alerts of the caller's counties, newest first."""
        found = [
            a
            for a in await self.repo.alerts_of(counties)
            if (kind is None or a.get("kind") == kind) and (status is None or a.get("status") == status)
        ]
        found.sort(key=lambda a: (str(a.get("raised_at")), a["_id"]), reverse=True)
        return [present_alert(a, counties) for a in found[:limit]]

    async def alert(self, *, alert_id: str, counties: Sequence[str]) -> Document:
        found = await self.repo.get_alert(alert_id)
        if found is None or found.get("county") not in counties:
            raise NotFound("预警", "alert")
        return present_alert(found, counties)

    # -- gauges -----------------------------------------------------------------------------------
    async def refresh_gauges(self) -> None:
        """Recompute the open, overdue and active-alert gauges from the database."""
        now = self.clock.now()
        open_by: dict[tuple[str, str], int] = {}
        overdue_by: dict[tuple[str, str], int] = {}
        from tiaojie.stats.projection import overdue_stage

        for doc in await self.repo.open_cases():
            county = doc.get("county") or "unknown"
            key = (county, doc.get("status") or "unknown")
            open_by[key] = open_by.get(key, 0) + 1
            stage = overdue_stage(doc, now)
            if stage:
                overdue_by[(county, stage)] = overdue_by.get((county, stage), 0) + 1
        referral_by: dict[tuple[str, str], int] = {}
        for doc in await self.repo.open_handovers():
            if doc.get("overdue_stages"):
                key = (doc.get("county") or "unknown", str(doc.get("agency_kind") or figures.INTERNAL))
                referral_by[key] = referral_by.get(key, 0) + 1
        hotspots: dict[tuple[str], int] = {}
        alerts: dict[tuple[str, str], int] = {}
        for alert in await self.repo.active_alerts():
            county = alert.get("county") or "unknown"
            alerts[(county, alert["kind"])] = alerts.get((county, alert["kind"]), 0) + 1
            if alert["kind"] == AlertKind.HOTSPOT:
                hotspots[(county,)] = hotspots.get((county,), 0) + 1
        counties = {k[0] for k in open_by} | {k[0] for k in alerts}
        for county in counties:
            # Zeros are explicit so a dashboard sees a county go quiet, not a gap.
            hotspots.setdefault((county,), 0)
            for stage in ("acceptance", "mediation"):
                overdue_by.setdefault((county, stage), 0)
        _set_gauge(self.metrics.cases_open, open_by)
        _set_gauge(self.metrics.cases_overdue, overdue_by)
        _set_gauge(self.metrics.referrals_overdue, referral_by)
        _set_gauge(self.metrics.hotspots_active, hotspots)
        _set_gauge(self.metrics.alerts_active, alerts)


def _set_gauge(gauge: Any, values: dict[Any, int]) -> None:
    """Set every labelled child; children no longer present drop to zero."""
    seen = set(values)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    for labels in list(gauge._metrics):  # prometheus_client keeps children by label tuple
        if labels not in seen:
            gauge.labels(*labels).set(0)


def present_alert(doc: Document, counties: Sequence[str]) -> Document:
    """An alert as the API shows it: related cases of other counties only as a count."""
    related = list((doc.get("related") or {}).values())
    visible = [r for r in related if r.get("county") in counties]
    out = {k: v for k, v in doc.items() if k not in _NOT_SHOWN}
    out["id"] = doc["_id"]
    out["related"] = sorted(visible, key=lambda r: (str(r.get("received_at")), str(r.get("case_id"))))
    out["related_elsewhere"] = len(related) - len(visible)
    return out
