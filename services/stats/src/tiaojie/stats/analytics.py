"""The daily analytics run: daily counts from the case projection, hotspot detection over
them (raising and clearing hotspot alerts), and the next four weeks' forecasts.

It runs once per local day on one replica (a lease in the database, taken and released as
changes of the storage engine, so of two replicas only one takes it), on the days not yet
evaluated, and is deterministic in its inputs: the same cases give the same counts, the
same alerts (ids derived from series and excursion start) and the same forecasts, which is
what `tiaojie rebuild` compares.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from tiaojie.contracts.envelope import derived_id, new_event
from tiaojie.contracts.stats import AlertKind, HotspotCleared, HotspotRaised
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document, sweep_forever
from tiaojie.runtime.revisions import Change
from tiaojie.stats.calendar import LOCAL_TZ, day_start
from tiaojie.stats.detection import Detection, Detector, Series, excursion_totals
from tiaojie.stats.forecast import LEVELS, Forecaster
from tiaojie.stats.repository import StatsRepository
from tiaojie.stats.service import SOURCE, StatsService
from tiaojie.stats.settings import StatsSettings

log = get_logger(__name__)
STATE = "analytics"
LEASE = "analytics-lease"
NO_TOWNSHIP = ""  # cases registered without a township: surveilled as their own series


def count_key(county: str, township: str | None, category: str) -> str:
    return f"{county}|{township or NO_TOWNSHIP}|{category}"


def digest(rows: list[tuple[date, str, str | None, str, int]]) -> str:
    """A fingerprint of the counts a detection read."""
    text = "\n".join(f"{d.isoformat()}|{c}|{t}|{k}|{n}" for d, c, t, k, n in sorted(rows, key=str))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str, str]:
    county, township, category = key.split("|", 2)
    return county, township, category


@dataclass(frozen=True)
class RunResult:
    recounted_days: int
    evaluated: tuple[str, str] | None
    raised: int
    cleared: int
    forecasts: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "recounted_days": self.recounted_days,
            "evaluated": list(self.evaluated) if self.evaluated else None,
            "raised": self.raised,
            "cleared": self.cleared,
            "forecasts": self.forecasts,
        }


class Analytics:
    def __init__(
        self,
        *,
        repository: StatsRepository,
        service: StatsService,
        clock: Clock,
        settings: StatsSettings,
    ) -> None:
        self.repo = repository
        self.service = service
        self.clock = clock
        self.settings = settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{settings.replica}"
        self._lock = asyncio.Lock()

    # -- scheduling ------------------------------------------------------------------------------
    async def run_forever(self) -> None:
        """Try the daily run at the configured interval until cancelled."""
        await sweep_forever(self._try, self.settings.analytics_interval, what="analytics run")

    async def _try(self) -> None:
        try:
            await self.run_if_due()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.service.metrics.analytics_runs.labels("failed").inc()
            raise  # logged (by error class) by sweep_forever, tried again next time

    async def run_if_due(self) -> RunResult | None:
        now = self.clock.now().astimezone(LOCAL_TZ)
        today = now.date()
        local_hour = now.hour
        state = await self.repo.get_job(STATE) or {}
        yesterday = today - timedelta(days=1)
        if local_hour < self.settings.analytics_hour or state.get("last_day") == yesterday.isoformat():
            return None
        return await self.run(through=yesterday)

    # -- the run ----------------------------------------------------------------------------------
    async def run(self, *, through: date, since: date | None = None) -> RunResult | None:
        """Recount, detect hotspots on the days up to `through` not yet evaluated (or from
        `since`), and forecast from the day after `through`."""
        async with self._lock:
            now = self.clock.now()
            if not await self._take_lease(now=now, until=now + timedelta(minutes=30)):
                return None
            try:
                result = await self._run(through=through, since=since)
            finally:
                await self._release_lease()
            self.service.metrics.analytics_runs.labels("done").inc()
            log.info("analytics run", **result.as_dict())
            return result

    async def _run(self, *, through: date, since: date | None) -> RunResult:
        recounted = await self.recount()
        state = await self.repo.get_job(STATE) or {}
        if since is None:
            last = state.get("last_day")
            since = date.fromisoformat(last) + timedelta(days=1) if last else through
        raised = cleared = 0
        evaluated = None
        if since <= through:
            raised, cleared = await self.detect(since=since, through=through)
            evaluated = (since.isoformat(), through.isoformat())
            await self._record_evaluated(since.isoformat(), through.isoformat())
        forecasts = await self.forecast(through=through)
        return RunResult(recounted, evaluated, raised, cleared, forecasts)

    # -- the lease and the state (changes of the storage engine) ----------------------------------
    async def _take_lease(self, *, now: datetime, until: datetime) -> bool:
        """Take the run's lease if it is free, expired or ours: of replicas trying at once,
        the one whose revision is claimed first holds it (the others decide again on it)."""
        owner = self.owner

        def decide(state: Document | None) -> Change | None:
            held = state or {}
            lease = held.get("lease_until")
            if held.get("owner") not in (None, owner) and lease is not None and lease > now:
                return None
            return Change({**held, "owner": owner, "lease_until": until})

        outcome = await self.repo.job_store.apply(LEASE, decide)
        return outcome.fresh

    async def _release_lease(self) -> None:
        owner = self.owner

        def decide(state: Document | None) -> Change | None:
            if state is None or state.get("owner") != owner:
                return None  # expired and taken by another meanwhile: theirs now
            return Change({**state, "owner": None, "lease_until": None})

        await self.repo.job_store.apply(LEASE, decide)

    async def _record_evaluated(self, since: str, through: str) -> None:
        """Widen the range of days evaluated (min of the first, max of the last)."""

        def decide(state: Document | None) -> Change | None:
            current = state or {}
            first, last = current.get("first_day"), current.get("last_day")
            wanted = {
                "first_day": min(first, since) if first else since,
                "last_day": max(last or "", through),
            }
            if first == wanted["first_day"] and last == wanted["last_day"]:
                return None
            return Change({**current, **wanted})

        await self.repo.job_store.apply(STATE, decide, verify_noop=True)

    async def recount(self) -> int:
        """Recompute the daily counts of every day a changed case touched."""
        stale = await self.repo.uncounted_days()
        for day, marks in sorted(stale.items()):
            counts: dict[str, int] = {}
            for doc in await self.repo.received_on(day):
                if not doc.get("county"):
                    continue
                key = count_key(doc["county"], doc.get("township"), doc.get("category") or "other")
                counts[key] = counts.get(key, 0) + 1
            await self.repo.save_daily_counts(day, counts)
            await self.repo.mark_counted(marks)
        return len(stale)

    def window_start(self, day: date) -> date:
        """First day of the history a day is judged on: anchored to the day's month, so a
        daily run and a rebuild over many days judge each day on the same data."""
        months_back = self.settings.history_days // 30
        year, month = day.year, day.month - months_back
        while month < 1:
            year, month = year - 1, month + 12
        return date(year, month, 1)

    async def history(self, *, first: date, through: date) -> list[tuple[date, str, str | None, str, int]]:
        rows: list[tuple[date, str, str | None, str, int]] = []
        for day, counts in (await self.repo.daily_counts_between(first, through)).items():
            for key, n in counts.items():
                county, township, category = parse_key(key)
                rows.append((date.fromisoformat(day), county, township, category, int(n)))
        return rows

    async def detect(self, *, since: date, through: date) -> tuple[int, int]:
        """Raise alerts for alarm onsets on days since..through; clear released ones.
        One detection per calendar month touched (every step is causal, so the statistic of
        a day does not depend on later days)."""
        raised = cleared = 0
        day = since
        while day <= through:
            month_end = (date(day.year + day.month // 12, day.month % 12 + 1, 1)) - timedelta(days=1)
            last = min(month_end, through)
            r, c = await self._detect_range(day, last)
            raised, cleared = raised + r, cleared + c
            day = last + timedelta(days=1)
        return raised, cleared

    async def _detect_range(self, since: date, through: date) -> tuple[int, int]:
        first = self.window_start(since)
        rows = await self.history(first=first, through=through)
        # What the days were judged on, so a rebuild can tell data that arrived later.
        await self.repo.record_detection(
            since=since.isoformat(), through=through.isoformat(), first=first.isoformat(), digest=digest(rows)
        )
        if not rows:
            return 0, 0
        series = Series.from_rows(rows, first=first, last=through)
        detection = Detector(self.settings.hotspot_method).run(series)
        days = detection.series.days
        begin = (since - days[0]).days
        index = {k: i for i, k in enumerate(detection.series.keys)}
        raised = cleared = 0
        for episode in detection.episodes:
            if episode.onset < begin:
                continue
            active = await self._active_hotspots()
            if detection.series.keys[episode.series] in active:
                continue  # one alert per series at a time
            raised += await self._raise(detection, episode.series, episode.started, episode.onset)
        for key, alert in (await self._active_hotspots()).items():
            i = index.get(key)
            if i is None:
                continue
            detected = (date.fromisoformat(alert["detected_on"]) - days[0]).days
            release = self._release_day(detection, i, max(begin, detected + 1))
            if release is not None:
                cleared += await self._clear(detection, alert, i, release)
        return raised, cleared

    async def _active_hotspots(self) -> dict[tuple[str, str | None, str], Document]:
        return {
            (a["county"], a.get("township"), a["category"]): a
            for a in await self.repo.active_alerts()
            if a.get("kind") == AlertKind.HOTSPOT
        }

    def _release_day(self, detection: Detection, i: int, start: int) -> int | None:
        stat = detection.stat[i]
        for t in range(start, len(stat)):
            if self._released(detection, stat, t):
                return t
        return None

    @staticmethod
    def _released(detection: Detection, stat: np.ndarray, t: int) -> bool:
        if detection.method == "nbcusum":
            return bool(stat[t] < detection.threshold / 2)
        window = stat[max(0, t - 2) : t + 1]
        return len(window) == 3 and bool((window <= detection.threshold).all())

    async def _raise(self, detection: Detection, i: int, started: int, onset: int) -> int:
        county, township, category = detection.series.keys[i]
        days = detection.series.days
        observed, expected = excursion_totals(detection, i, started, onset)
        township_value = township if township is not None else None
        place = township if township is not None else "*"
        alert_id = f"hotspot:{county}:{place}:{category}:{days[started].isoformat()}"
        detected_on = days[onset]
        at = day_start(detected_on + timedelta(days=1))
        payload = HotspotRaised(
            alert_id=alert_id,
            county=county,
            township=township_value,
            category=category,
            method=detection.method,
            score=round(float(detection.stat[i, onset]), 4),
            threshold=detection.threshold,
            started_on=days[started],
            detected_on=detected_on,
            observed=observed,
            expected=round(expected, 3),
            raised_at=at,
        )
        doc: Document = {
            "_id": alert_id,
            "kind": AlertKind.HOTSPOT,
            "status": "active",
            "county": county,
            "township": township_value,
            "category": category,
            "method": detection.method,
            "score": payload.score,
            "threshold": payload.threshold,
            "started_on": payload.started_on.isoformat(),
            "detected_on": detected_on.isoformat(),
            "observed": observed,
            "expected": payload.expected,
            "raised_at": at,
        }
        event = new_event(
            payload,
            source=SOURCE,
            subject=alert_id,
            county=county,
            id=derived_id(alert_id, "raised"),
            time=at,
        )
        return int(await self.service.raise_alert(doc, event))  # raised and announced once

    async def _clear(self, detection: Detection, alert: Document, i: int, release: int) -> int:
        days = detection.series.days
        started = max(0, (date.fromisoformat(alert["started_on"]) - days[0]).days)
        observed, expected = excursion_totals(detection, i, started, release)
        cleared_on = days[release]
        at = day_start(cleared_on + timedelta(days=1))
        event = new_event(
            HotspotCleared(
                alert_id=alert["_id"],
                county=alert["county"],
                township=alert.get("township"),
                category=alert["category"],
                method=alert["method"],
                detected_on=date.fromisoformat(alert["detected_on"]),
                cleared_on=cleared_on,
                observed=observed,
                expected=round(expected, 3),
                cleared_at=at,
            ),
            source=SOURCE,
            subject=alert["_id"],
            county=alert["county"],
            id=derived_id(alert["_id"], "cleared"),
            time=at,
        )
        fields = {
            "status": "cleared",
            "cleared_on": cleared_on.isoformat(),
            "cleared_at": at,
            "observed_total": observed,
        }
        return int(await self.service.change_alert(alert["_id"], fields, event))

    async def forecast(self, *, through: date) -> int:
        """Forecasts of the next four weeks per county × category, stored per county."""
        rows = await self.history(
            first=through - timedelta(days=self.settings.history_days - 1), through=through
        )
        if not rows:
            return 0
        first = min(r[0] for r in rows)
        if (through - first).days < 13:
            return 0  # two weeks of history at least
        keys = sorted({(r[1], r[3]) for r in rows})
        index = {k: i for i, k in enumerate(keys)}
        days = [first + timedelta(days=i) for i in range((through - first).days + 1)]
        counts = np.zeros((len(keys), len(days)))
        for day, county, _township, category, n in rows:
            counts[index[(county, category)], (day - first).days] += n
        result = Forecaster().forecast(days, keys, counts, weeks=4)
        docs: dict[str, Document] = {}
        for (county, category), weeks in zip(keys, result, strict=True):
            doc = docs.setdefault(
                county,
                {
                    "_id": county,
                    "county": county,
                    "issued_on": (through + timedelta(days=1)).isoformat(),
                    "history_from": first.isoformat(),
                    "history_to": through.isoformat(),
                    "categories": {},
                },
            )
            doc["categories"][category] = [
                {
                    "week_start": w.start.isoformat(),
                    "week_end": w.end.isoformat(),
                    "mean": round(w.mean, 2),
                    **{f"lower_{int(lv * 100)}": w.intervals[lv][0] for lv in LEVELS},
                    **{f"upper_{int(lv * 100)}": w.intervals[lv][1] for lv in LEVELS},
                }
                for w in weeks
            ]
        await self.repo.save_forecasts(list(docs.values()))
        return len(keys)
