"""Scoring detectors against planted outbreaks, and forecasts against held-out weeks.

Detection: an outbreak is detected when any series it touches (one of its townships ×
its category, or its county × category total) is in alarm on a day of the outbreak; the
delay is the first such day minus the outbreak's first day. An alarm onset is false when
no outbreak touches its series between the outbreak's start and a week after its end.
False alarms are reported per county-month of the evaluated period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median
from typing import Any

import numpy as np

from tiaojie.stats.detection import Detection, Episode
from tiaojie.stats.synthetic_counts import Outbreak

TRAILING_DAYS = 7  # an onset this soon after an outbreak ends is still about it


@dataclass(frozen=True)
class DetectionScore:
    method: str
    threshold: float
    outbreaks: int
    detected: int
    false_alarms: int
    county_months: float
    delays: tuple[int, ...]
    detected_by_size: dict[str, tuple[int, int]]

    @property
    def share(self) -> float:
        return self.detected / self.outbreaks if self.outbreaks else 0.0

    @property
    def false_per_county_month(self) -> float:
        return self.false_alarms / self.county_months if self.county_months else 0.0

    @property
    def median_delay(self) -> float | None:
        return float(median(self.delays)) if self.delays else None


def _touches(outbreak: Outbreak, key: tuple[str, str | None, str]) -> bool:
    county, township, category = key
    if county != outbreak.county or category != outbreak.category:
        return False
    return township is None or township in outbreak.townships


def score(
    detection: Detection,
    outbreaks: list[Outbreak],
    *,
    period: tuple[date, date],
    episodes: list[Episode] | None = None,
    in_alarm: np.ndarray | None = None,
) -> DetectionScore:
    """Score alarm episodes (onsets within `period`) against the planted outbreaks."""
    days = detection.series.days
    keys = detection.series.keys
    first, last = period
    episodes = detection.episodes if episodes is None else episodes
    first_t = (first - days[0]).days
    last_t = (last - days[0]).days
    if in_alarm is None:
        in_alarm = _alarm_days(episodes, detection.stat.shape)
    # Outbreaks whose start lies in the period are the ones scored.
    scored = [o for o in outbreaks if first <= o.start <= last]
    detected = 0
    delays: list[int] = []
    by_size: dict[str, list[int]] = {}
    touched_rows = {id(o): [i for i, k in enumerate(keys) if _touches(o, k)] for o in outbreaks}
    for outbreak in scored:
        rows = touched_rows[id(outbreak)]
        begin = (outbreak.start - days[0]).days
        end = (outbreak.end - days[0]).days
        hits = (
            np.flatnonzero(in_alarm[rows, begin : end + 1].any(axis=0)) if rows else np.array([], dtype=int)
        )
        tally = by_size.setdefault(outbreak.size, [0, 0])
        tally[1] += 1
        if len(hits):
            detected += 1
            tally[0] += 1
            delays.append(int(hits[0]))
    false_alarms = 0
    for episode in episodes:
        if not first_t <= episode.onset <= last_t:
            continue
        key = keys[episode.series]
        onset_day = days[episode.onset]
        explained = any(
            _touches(o, key) and o.start <= onset_day <= o.end + timedelta(days=TRAILING_DAYS)
            for o in outbreaks
        )
        if not explained:
            false_alarms += 1
    counties = len({k[0] for k in keys})
    months = ((last - first).days + 1) / (365.25 / 12)
    return DetectionScore(
        method=detection.method,
        threshold=detection.threshold,
        outbreaks=len(scored),
        detected=detected,
        false_alarms=false_alarms,
        county_months=counties * months,
        delays=tuple(delays),
        detected_by_size={k: (v[0], v[1]) for k, v in sorted(by_size.items())},
    )


def _alarm_days(episodes: list[Episode], shape: tuple[int, ...]) -> np.ndarray:
    alarm = np.zeros(shape, dtype=bool)
    for episode in episodes:
        end = shape[1] if episode.ended is None else episode.ended
        alarm[episode.series, episode.onset : end] = True
    return alarm


# -- forecasts -------------------------------------------------------------------------


def mase(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> float:
    """Mean absolute scaled error over series with a positive in-sample scale."""
    ok = scale > 0
    errors = np.abs(actual[ok] - predicted[ok]) / scale[ok].reshape(-1, *([1] * (actual.ndim - 1)))
    return float(errors.mean())


def seasonal_naive_scale(weekly: np.ndarray, season: int = 52) -> np.ndarray:
    """In-sample MAE of the seasonal-naive forecast, per series (the MASE denominator)."""
    if weekly.shape[1] <= season:
        return np.abs(np.diff(weekly, axis=1)).mean(axis=1)
    return np.abs(weekly[:, season:] - weekly[:, :-season]).mean(axis=1)


# -- the benchmarks behind benchmarks/hotspots and benchmarks/forecast ---------------------


@dataclass(frozen=True)
class DetectionBenchmark:
    calibration: dict[str, DetectionScore]  # method -> score at its calibrated threshold
    test: dict[str, DetectionScore]
    defaults: dict[str, DetectionScore]  # method -> score at its default threshold (test data)
    target_false_alarms: float
    outbreaks: int
    series: int
    counties: int


def _history(townships: list[Any], seed: int, first: date, years: int) -> Any:
    from tiaojie.stats.synthetic_counts import generate

    last = date(first.year + years, 1, 1) - timedelta(days=1)
    return generate(
        townships, first=first, last=last, seed=seed, outbreaks_from=date(first.year + years - 1, 1, 1)
    )


def run_detection_benchmark(
    townships: list[Any],
    *,
    calibration_seed: int = 101,
    test_seed: int = 202,
    target_false_alarms: float = 1.0,
    first: date = date(2023, 1, 1),
    years: int = 3,
) -> DetectionBenchmark:
    """Calibrate each method's threshold to a false-alarm budget on one synthetic city,
    then score both on another (same townships, fresh noise and outbreaks)."""
    from tiaojie.stats.detection import Detector

    fit_until = date(first.year + years - 1, 1, 1) - timedelta(days=1)
    period = (fit_until + timedelta(days=1), date(first.year + years, 1, 1) - timedelta(days=1))
    detector = {"nbcusum": Detector("nbcusum"), "c2": Detector("c2")}
    grids = {
        "nbcusum": [x / 4 for x in range(16, 61)],  # 4.0 .. 15.0
        "c2": [x / 4 for x in range(8, 121)],  # 2.0 .. 30.0
    }

    def at(detection: Detection, threshold: float, outbreaks: list[Outbreak]) -> DetectionScore:
        return score(detection.at_threshold(threshold), outbreaks, period=period)

    calibration_data = _history(townships, calibration_seed, first, years)
    test_data = _history(townships, test_seed, first, years)
    chosen: dict[str, DetectionScore] = {}
    for method in ("nbcusum", "c2"):
        detection = detector[method].run(calibration_data.series, fit_until=fit_until)
        for threshold in grids[method]:
            result = at(detection, threshold, calibration_data.outbreaks)
            if result.false_per_county_month <= target_false_alarms:
                chosen[method] = result
                break
    tested: dict[str, DetectionScore] = {}
    defaults: dict[str, DetectionScore] = {}
    for method in ("nbcusum", "c2"):
        detection = detector[method].run(test_data.series, fit_until=fit_until)
        tested[method] = at(detection, chosen[method].threshold, test_data.outbreaks)
        default = detector[method].nbcusum.h if method == "nbcusum" else detector[method].c2.threshold
        defaults[method] = at(detection, default, test_data.outbreaks)
    return DetectionBenchmark(
        calibration=chosen,
        test=tested,
        defaults=defaults,
        target_false_alarms=target_false_alarms,
        outbreaks=tested["nbcusum"].outbreaks,
        series=len(test_data.series.keys),
        counties=len({t.county for t in townships}),
    )


@dataclass(frozen=True)
class ForecastBenchmark:
    origins: int
    series: int
    mase_model: float
    mase_snaive: float
    mase_model_by_horizon: tuple[float, ...]
    mase_snaive_by_horizon: tuple[float, ...]
    coverage: dict[float, float]  # nominal level -> share of actual weeks inside


def county_category(series: Any) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Aggregate a township × category Series to county × category daily counts."""
    keys = sorted({(k[0], k[2]) for k in series.keys})
    index = {k: i for i, k in enumerate(keys)}
    out = np.zeros((len(keys), len(series.days)))
    for i, (county, _township, category) in enumerate(series.keys):
        out[index[(county, category)]] += series.counts[i]
    return keys, out


def run_forecast_benchmark(
    townships: list[Any],
    *,
    seed: int = 303,
    first: date = date(2023, 1, 2),
    years: int = 3,
    origins: int = 12,
    weeks: int = 4,
) -> ForecastBenchmark:
    """Rolling-origin evaluation over the last year of a synthetic history: each origin
    forecasts the next `weeks` weeks from the days before it; MASE is scaled by the
    in-sample error of the seasonal-naive forecast (same week a year earlier)."""
    from tiaojie.stats.forecast import LEVELS, Forecaster, weekly_totals
    from tiaojie.stats.synthetic_counts import generate

    last = first + timedelta(days=7 * 52 * years + 6)
    data = generate(townships, first=first, last=last, seed=seed)
    keys, daily = county_category(data.series)
    days = data.series.days
    forecaster = Forecaster()
    model_errors: list[np.ndarray] = []
    naive_errors: list[np.ndarray] = []
    inside = {lv: 0 for lv in LEVELS}
    total = 0
    season = 52
    test_start = len(days) - 7 * (weeks + 4 * (origins - 1)) - 7
    for o in range(origins):
        origin_t = test_start + 7 * 4 * o
        origin = days[origin_t]
        history_days = days[max(0, origin_t - 730) : origin_t]
        history = daily[:, max(0, origin_t - 730) : origin_t]
        result = forecaster.forecast(history_days, keys, history, weeks=weeks)
        actual = weekly_totals(daily, days, origin, weeks)
        naive = weekly_totals(daily, days, origin - timedelta(days=7 * season), weeks)
        past_weeks = (origin_t // 7) - 1
        in_sample = weekly_totals(daily, days, origin - timedelta(days=7 * past_weeks), past_weeks)
        scale = seasonal_naive_scale(in_sample, season)
        predicted = np.array([[w.mean for w in series] for series in result])
        ok = scale > 0
        model_errors.append(np.abs(actual - predicted)[ok] / scale[ok, None])
        naive_errors.append(np.abs(actual - naive)[ok] / scale[ok, None])
        for i, series in enumerate(result):
            for w, week in enumerate(series):
                total += 1
                for lv in LEVELS:
                    lo, hi = week.intervals[lv]
                    inside[lv] += int(lo <= actual[i, w] <= hi)
    model = np.concatenate(model_errors)
    naive_all = np.concatenate(naive_errors)
    return ForecastBenchmark(
        origins=origins,
        series=len(keys),
        mase_model=float(model.mean()),
        mase_snaive=float(naive_all.mean()),
        mase_model_by_horizon=tuple(float(x) for x in model.mean(axis=0)),
        mase_snaive_by_horizon=tuple(float(x) for x in naive_all.mean(axis=0)),
        coverage={lv: inside[lv] / total for lv in LEVELS},
    )


def detection_table(result: DetectionBenchmark) -> str:
    """The detection benchmark as a plain-text table."""
    lines = [
        f"Synthetic Linyi: {result.counties} counties, {result.series} township × category series "
        f"(+ county totals), {result.outbreaks} planted outbreaks in the evaluated year.",
        f"Thresholds calibrated on another synthetic city to ≤ {result.target_false_alarms:g} false alarm "
        "per county-month, then applied to this one.",
        "",
        f"{'method':<10}{'threshold':>10}{'detected':>10}{'small':>8}{'medium':>8}{'large':>8}"
        f"{'false/county-month':>20}{'median delay (d)':>18}",
    ]

    def row(label: str, s: DetectionScore) -> str:
        shares = []
        for size in ("small", "medium", "large"):
            hit, total = s.detected_by_size.get(size, (0, 0))
            shares.append(f"{hit / max(total, 1):>8.0%}")
        delay = "-" if s.median_delay is None else f"{s.median_delay:.1f}"
        false = s.false_per_county_month
        return f"{label:<10}{s.threshold:>10.2f}{s.share:>10.1%}{''.join(shares)}{false:>20.2f}{delay:>18}"

    for method in ("nbcusum", "c2"):
        lines.append(row(method, result.test[method]))
    lines += ["", "At each method's default threshold (same data):"]
    for method in ("nbcusum", "c2"):
        lines.append(row(method, result.defaults[method]))
    nb, c2 = result.test["nbcusum"], result.test["c2"]
    verdict = nb.share > c2.share and nb.false_per_county_month <= c2.false_per_county_month
    lines += [
        "",
        f"nbcusum {'beats' if verdict else 'does NOT beat'} EARS C2: detects {nb.share:.1%} vs "
        f"{c2.share:.1%} at {nb.false_per_county_month:.2f} vs {c2.false_per_county_month:.2f} "
        "false alarms per county-month.",
    ]
    return "\n".join(lines)


def forecast_table(result: ForecastBenchmark) -> str:
    horizons = len(result.mase_model_by_horizon)
    head = "".join(f"{'h=' + str(h + 1):>8}" for h in range(horizons))
    return "\n".join(
        [
            f"Synthetic Linyi: {result.series} county × category weekly series, {result.origins} rolling "
            f"origins over the held-out year, {horizons}-week horizon.",
            "MASE scaled by the in-sample error of the seasonal-naive forecast (same week a year before).",
            "",
            f"{'method':<16}{'MASE':>8}{head}",
            f"{'seasonal model':<16}{result.mase_model:>8.3f}"
            + "".join(f"{v:>8.3f}" for v in result.mase_model_by_horizon),
            f"{'seasonal naive':<16}{result.mase_snaive:>8.3f}"
            + "".join(f"{v:>8.3f}" for v in result.mase_snaive_by_horizon),
            "",
            "Prediction interval coverage: "
            + ", ".join(f"{lv:.0%} nominal → {cov:.1%}" for lv, cov in sorted(result.coverage.items())),
        ]
    )
