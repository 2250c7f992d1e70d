"""Hotspot detection over daily counts per township × category (pure numpy, no I/O).

Two methods, both run on the same series (every township × category, plus every
county × category aggregate so a surge spread thin over several townships is seen):

- ``c2``: EARS C2 (Hutwagner et al. 2003), the CDC baseline: today's count against the
  mean and standard deviation of days t-9..t-3. No notion of weekdays or holidays.
- ``nbcusum``: a negative-binomial CUSUM (Höhle & Paul 2008) on a calendar-adjusted
  baseline. Expected counts are level × calendar intensity, where the intensity of each
  category is a ridge-penalised Poisson regression of the deployment's daily totals on
  weekday, official days off and make-up working days (调休), the day after a long
  closure, the weeks around the Spring Festival, the harvests (三夏/三秋), a yearly cycle
  and a trend; the level of each series is an exponentially weighted rate over the days
  before a guard band, shrunk toward its county's rate for the category (sparse series).
  The CUSUM accumulates the log-likelihood ratio of an outbreak (at least ``delta`` extra
  cases a day, or ``kappa`` times the baseline) against the baseline; it alarms when the
  sum crosses ``h`` and the alarm is released when it falls below h/2 (no flapping).

Parameters were chosen on synthetic history (see benchmarks/hotspots) and are defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np

from tiaojie.stats import calendar

METHODS = ("nbcusum", "c2")
CUSUM_CAP = 25.0  # bound on the statistic so an alarm clears soon after a surge ends


@dataclass(frozen=True)
class NbCusumParams:
    kappa: float = 2.0  # outbreak as a multiple of the baseline...
    delta: float = 0.3  # ...or at least this many extra cases a day, whichever is more
    h: float = 7.0  # alarm threshold (≈0.8 false alarms per county-month on synthetic Linyi)
    guard_days: int = 7  # days before today kept out of the baseline level
    half_life_days: float = 56.0  # of the exponentially weighted baseline level
    prior_days: float = 28.0  # shrinkage of a series' level toward its county's
    warmup_days: int = 28  # no alarm before this much history
    quiet_days: int = 7  # in alarm, a window this long without net outbreak evidence releases it


@dataclass(frozen=True)
class C2Params:
    threshold: float = 3.0
    sd_floor: float = 0.5  # EARS divides by the baseline sd; sparse series often have 0
    baseline_days: int = 7
    lag_days: int = 2
    release_days: int = 3  # consecutive quiet days that end an alarm episode


@dataclass
class Series:
    """Daily counts of many series over one contiguous run of days."""

    days: list[date]
    keys: list[tuple[str, str | None, str]]  # (county, township or None, category)
    counts: np.ndarray  # shape (series, days)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=float)
        assert self.counts.shape == (len(self.keys), len(self.days))

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[tuple[date, str, str | None, str, int]],
        *,
        first: date | None = None,
        last: date | None = None,
        extra_keys: Sequence[tuple[str, str | None, str]] = (),
    ) -> Series:
        """Build from (day, county, township, category, count) rows; missing days are 0."""
        if not rows and (first is None or last is None):
            return cls([], [], np.zeros((0, 0)))
        lo = first or min(r[0] for r in rows)
        hi = last or max(r[0] for r in rows)
        days = calendar.days_between(lo, hi)
        keys = sorted({(r[1], r[2], r[3]) for r in rows} | set(extra_keys), key=_key_order)
        index = {k: i for i, k in enumerate(keys)}
        matrix = np.zeros((len(keys), len(days)))
        for day, county, township, category, count in rows:
            t = (day - lo).days
            if 0 <= t < len(days):
                matrix[index[(county, township, category)], t] += count
        return cls(days, keys, matrix)

    def with_county_totals(self) -> Series:
        """Add a county × category aggregate for every township series."""
        township_rows = [i for i, k in enumerate(self.keys) if k[1] is not None]
        totals: dict[tuple[str, str | None, str], np.ndarray] = {}
        for i in township_rows:
            county, _, category = self.keys[i]
            key = (county, None, category)
            totals[key] = totals.get(key, np.zeros(len(self.days))) + self.counts[i]
        keys = [k for k in self.keys if k[1] is not None] + sorted(totals, key=_key_order)
        rows = [self.counts[i] for i in township_rows] + [totals[k] for k in sorted(totals, key=_key_order)]
        matrix = np.vstack(rows) if rows else np.zeros((0, len(self.days)))
        return Series(self.days, keys, matrix)


def _key_order(key: tuple[str, str | None, str]) -> tuple[str, str, str]:
    return (key[0], key[1] or "", key[2])


# -- the calendar model --------------------------------------------------------------


@dataclass(frozen=True)
class CalendarModel:
    """Relative intensity of one category by day: exp(design · beta), mean 1 in training."""

    beta: np.ndarray
    scale: float
    size: float = 10.0  # negative-binomial size (over-dispersion) of single series

    def intensity(self, days: list[date]) -> np.ndarray:
        eta = np.clip(calendar.design(days) @ self.beta, -20, 20)
        return np.exp(eta) / self.scale


_RIDGE = {
    "intercept": 0.0,
    "trend_years": 200.0,
    "year_sin1": 20.0,
    "year_cos1": 20.0,
    "year_sin2": 20.0,
    "year_cos2": 20.0,
}


def fit_calendar(days: list[date], totals: np.ndarray, *, iterations: int = 50) -> CalendarModel:
    """Ridge-penalised Poisson regression of daily totals on the calendar (IRLS)."""
    x = calendar.design(days)
    y = np.asarray(totals, dtype=float)
    penalty = np.array([_RIDGE.get(name, 2.0) for name in calendar.FEATURES])
    if len(days) < 300:
        # Less than a year cannot separate a trend from the yearly cycle: leave both out.
        for j, name in enumerate(calendar.FEATURES):
            if name.startswith("year_") or name == "trend_years":
                penalty[j] = 1e9
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(max(y.mean(), 1e-3)) if len(y) else 0.0
    for _ in range(iterations):
        eta = np.clip(x @ beta, -20, 20)
        mu = np.exp(eta)
        z = eta + (y - mu) / mu
        xtw = x.T * mu
        updated = np.linalg.solve(xtw @ x + np.diag(penalty), xtw @ z)
        if np.max(np.abs(updated - beta)) < 1e-8:
            beta = updated
            break
        beta = updated
    scale = float(np.exp(np.clip(x @ beta, -20, 20)).mean()) if len(days) else 1.0
    return CalendarModel(beta=beta, scale=scale)


def estimate_size(y: np.ndarray, mu: np.ndarray) -> float:
    """Negative-binomial size by moments: Var = mu + mu^2 / size."""
    excess = float(np.sum((y - mu) ** 2 - mu))
    square = float(np.sum(mu**2))
    if square <= 0 or excess <= 0:
        return 200.0
    return float(np.clip(square / excess, 0.5, 200.0))


# -- baseline levels ---------------------------------------------------------------------


def _ew_cumulative(values: np.ndarray, decay: float) -> np.ndarray:
    out = np.empty_like(values)
    acc = np.zeros(values.shape[0])
    for t in range(values.shape[1]):
        acc = decay * acc + values[:, t]
        out[:, t] = acc
    return out


def expected_counts(
    counts: np.ndarray,
    intensity: np.ndarray,
    groups: np.ndarray,
    *,
    guard_days: int,
    half_life_days: float,
    prior_days: float,
) -> np.ndarray:
    """Baseline expectation of every series on every day from strictly earlier days.

    counts, intensity: (series, days); groups: (series,) group id for shrinkage.
    """
    _n_series, n_days = counts.shape
    decay = 0.5 ** (1.0 / half_life_days)
    ew_y = _ew_cumulative(counts, decay)
    ew_f = _ew_cumulative(intensity, decay)
    lag = guard_days + 1
    past_y = np.zeros_like(ew_y)
    past_f = np.zeros_like(ew_f)
    if n_days > lag:
        past_y[:, lag:] = ew_y[:, :-lag]
        past_f[:, lag:] = ew_f[:, :-lag]
    # Group rate: pooled over the series of a group (e.g. a county's townships).
    group_rate = np.zeros_like(past_y)
    for g in np.unique(groups):
        members = groups == g
        rate = past_y[members].sum(axis=0) / np.maximum(past_f[members].sum(axis=0), 1e-9)
        group_rate[members] = rate
    level = (past_y + prior_days * group_rate) / (past_f + prior_days)
    return level * intensity


# -- the two detectors ---------------------------------------------------------------------


def nb_cusum(counts: np.ndarray, expected: np.ndarray, size: np.ndarray, params: NbCusumParams) -> np.ndarray:
    """The CUSUM statistic of every series on every day (starts at 0 on the first day).

    Once in alarm (the sum reached h), a week that taken as a whole is no more likely
    under the outbreak than under the baseline (its log-likelihood ratios sum to ≤ 0)
    releases the alarm and restarts the sum: otherwise a large surge would stay in alarm
    for months after it ended, since each quiet day of a sparse series subtracts little.
    Before an alarm the sum is left alone, so a slow build-up keeps its evidence."""
    mu0 = np.maximum(expected, 1e-4)
    mu1 = np.maximum(params.kappa * mu0, mu0 + params.delta)
    r = size if size.shape == mu0.shape else np.broadcast_to(size.reshape(-1, 1), mu0.shape)
    llr = counts * np.log(mu1 * (r + mu0) / (mu0 * (r + mu1))) + r * np.log((r + mu0) / (r + mu1))
    stat = np.zeros_like(counts)
    acc = np.zeros(counts.shape[0])
    week = params.quiet_days
    running = np.cumsum(llr, axis=1)
    alarm = np.zeros(counts.shape[0], dtype=bool)
    for t in range(counts.shape[1]):
        acc = np.clip(acc + llr[:, t], 0.0, CUSUM_CAP)
        if t < params.warmup_days:
            acc[:] = 0.0
        alarm |= acc >= params.h
        if t >= week:
            quiet = alarm & (running[:, t] - running[:, t - week] <= 0)
            acc = np.where(quiet, 0.0, acc)
        alarm &= acc >= params.h / 2
        stat[:, t] = acc
    return stat


def ears_c2(counts: np.ndarray, params: C2Params) -> np.ndarray:
    """The C2 statistic of every series on every day (0 until a full baseline exists)."""
    _n_series, n_days = counts.shape
    width = params.baseline_days
    start = width + params.lag_days
    stat = np.zeros_like(counts)
    if n_days <= start:
        return stat
    windows = np.lib.stride_tricks.sliding_window_view(counts, width, axis=1)
    # windows[:, j] covers days j .. j+width-1; day t uses j = t - start.
    base = windows[:, : n_days - start]
    mean = base.mean(axis=2)
    sd = np.maximum(base.std(axis=2, ddof=1), params.sd_floor)
    stat[:, start:] = (counts[:, start:] - mean) / sd
    return stat


# -- alarm episodes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    series: int
    started: int  # day index where the excursion began
    onset: int  # day index of the alarm
    ended: int | None  # day index of release (None: still active at the end)
    score: float


def cusum_episodes(stat: np.ndarray, h: float) -> list[Episode]:
    """Alarm when the statistic crosses h; release when it falls below h/2."""
    return _episodes(stat, stat >= h, stat < h / 2, excursion=True)


def c2_episodes(stat: np.ndarray, params: C2Params) -> list[Episode]:
    """Alarm when C2 exceeds the threshold; release after `release_days` quiet days."""
    alarm = stat > params.threshold
    quiet = np.zeros_like(alarm, dtype=int)
    run = np.zeros(stat.shape[0], dtype=int)
    for t in range(stat.shape[1]):
        run = np.where(alarm[:, t], 0, run + 1)
        quiet[:, t] = run
    return _episodes(stat, alarm, quiet >= params.release_days, excursion=False)


def _episodes(stat: np.ndarray, alarm: np.ndarray, release: np.ndarray, *, excursion: bool) -> list[Episode]:
    found: list[Episode] = []
    active = np.zeros(stat.shape[0], dtype=bool)
    onset = np.zeros(stat.shape[0], dtype=int)
    started = np.zeros(stat.shape[0], dtype=int)
    last_zero = np.full(stat.shape[0], -1)
    for t in range(stat.shape[1]):
        if excursion:
            last_zero = np.where(stat[:, t] <= 0, t, last_zero)
        ends = active & release[:, t]
        for i in np.flatnonzero(ends):
            found.append(Episode(int(i), int(started[i]), int(onset[i]), t, float(stat[i, onset[i]])))
        active &= ~ends
        begins = ~active & alarm[:, t]
        for i in np.flatnonzero(begins):
            onset[i] = t
            started[i] = (last_zero[i] + 1) if excursion else t
        active |= begins
    for i in np.flatnonzero(active):
        found.append(Episode(int(i), int(started[i]), int(onset[i]), None, float(stat[i, onset[i]])))
    return sorted(found, key=lambda e: (e.onset, e.series))


# -- running a method over a table --------------------------------------------------------------


@dataclass
class Detection:
    """Statistics and episodes of one method over a Series (after county totals)."""

    method: str
    series: Series
    stat: np.ndarray
    expected: np.ndarray
    episodes: list[Episode]
    threshold: float
    size: np.ndarray | None = None

    def at_threshold(self, threshold: float, params: NbCusumParams | None = None) -> Detection:
        """The same detection with another alarm threshold (the CUSUM depends on it once
        an alarm is released, so it is recomputed; baselines are reused)."""
        if self.method == "c2":
            episodes = c2_episodes(self.stat, C2Params(threshold=threshold))
            return Detection("c2", self.series, self.stat, self.expected, episodes, threshold)
        p = replace(params or NbCusumParams(), h=threshold)
        assert self.size is not None
        stat = nb_cusum(self.series.counts, self.expected, self.size, p)
        return Detection(
            "nbcusum", self.series, stat, self.expected, cusum_episodes(stat, threshold), threshold, self.size
        )


@dataclass
class Detector:
    """Runs a method prospectively: calendar models are refitted each month on the days
    before it, so no day is judged with knowledge of itself or what follows."""

    method: str = "nbcusum"
    nbcusum: NbCusumParams = field(default_factory=NbCusumParams)
    c2: C2Params = field(default_factory=C2Params)
    min_fit_days: int = 56

    def run(self, series: Series, *, fit_until: date | None = None) -> Detection:
        """Detect over every day of `series` (county totals are added here).

        With `fit_until`, calendar models are fitted once on the days up to it (for
        evaluations with a separate training period); otherwise monthly, prospectively.
        """
        full = series.with_county_totals()
        if self.method == "c2":
            stat = ears_c2(full.counts, self.c2)
            return Detection(
                "c2", full, stat, np.zeros_like(stat), c2_episodes(stat, self.c2), self.c2.threshold
            )
        if self.method != "nbcusum":
            raise ValueError(f"unknown method {self.method!r} (one of {', '.join(METHODS)})")
        intensity, size = self.calendar_intensity(full, fit_until=fit_until)
        groups = _shrinkage_groups(full.keys)
        p = self.nbcusum
        expected = expected_counts(
            full.counts,
            intensity,
            groups,
            guard_days=p.guard_days,
            half_life_days=p.half_life_days,
            prior_days=p.prior_days,
        )
        stat = nb_cusum(full.counts, expected, size, p)
        return Detection("nbcusum", full, stat, expected, cusum_episodes(stat, p.h), p.h, size)

    def calendar_intensity(
        self, full: Series, *, fit_until: date | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-series calendar intensity and negative-binomial size, both (series, days),
        each day's from a model fitted on earlier days only (causal)."""
        categories = sorted({k[2] for k in full.keys})
        township_rows = np.array([k[1] is not None for k in full.keys])
        by_category = {c: np.array([k[2] == c for k in full.keys]) for c in categories}
        intensity = np.ones_like(full.counts)
        sizes = np.full(full.counts.shape, 10.0)
        n_days = len(full.days)
        if fit_until is not None:
            blocks = [(0, n_days, (fit_until - full.days[0]).days + 1)]
        else:
            blocks = _monthly_blocks(full.days)
        for c in categories:
            rows = by_category[c] & township_rows
            rows_idx = np.flatnonzero(rows)
            totals = full.counts[rows].sum(axis=0)
            for begin, end, fit_end in blocks:
                if fit_end < self.min_fit_days:
                    continue  # too little history: a flat calendar (intensity 1)
                model = fit_calendar(full.days[:fit_end], totals[:fit_end])
                intensity[by_category[c], begin:end] = model.intensity(full.days[begin:end])
                if len(rows_idx):
                    # Over-dispersion of single series around calendar × level.
                    past = model.intensity(full.days[:fit_end])
                    y = full.counts[rows_idx, :fit_end]
                    rate = y.sum(axis=1, keepdims=True) / max(float(past.sum()), 1e-9)
                    sizes[by_category[c], begin:end] = estimate_size(y, rate * past)
        return intensity, sizes


def _shrinkage_groups(keys: list[tuple[str, str | None, str]]) -> np.ndarray:
    """Township series shrink toward their county and category; county totals toward
    the category across counties."""
    labels = [f"{k[0]}|{k[2]}" if k[1] is not None else f"*|{k[2]}" for k in keys]
    lookup = {label: i for i, label in enumerate(sorted(set(labels)))}
    return np.array([lookup[label] for label in labels])


def _monthly_blocks(days: list[date]) -> list[tuple[int, int, int]]:
    """(begin, end, fit_end) per calendar month: fit on days before the month begins."""
    blocks: list[tuple[int, int, int]] = []
    begin = 0
    for t in range(1, len(days) + 1):
        if t == len(days) or days[t].month != days[begin].month:
            blocks.append((begin, t, begin))
            begin = t
    return blocks


def excursion_totals(detection: Detection, i: int, started: int, until: int) -> tuple[int, float]:
    """Observed and expected cases of series i from day index `started` to `until`."""
    observed = int(detection.series.counts[i, started : until + 1].sum())
    expected = float(detection.expected[i, started : until + 1].sum())
    return observed, expected


def day_index(series: Series, day: date) -> int:
    return (day - series.days[0]).days


def alert_rows(detection: Detection, *, since: date | None = None) -> list[dict[str, object]]:
    """One row per alarm onset: date_detected, county, township, category, method, score."""
    rows: list[dict[str, object]] = []
    for episode in detection.episodes:
        day = detection.series.days[episode.onset]
        if since is not None and day < since:
            continue
        county, township, category = detection.series.keys[episode.series]
        rows.append(
            {
                "date_detected": day.isoformat(),
                "county": county,
                "township": township or "",
                "category": category,
                "method": detection.method,
                "score": round(episode.score, 3),
            }
        )
    return rows


def shift(day: date, days: int) -> date:
    return day + timedelta(days=days)
