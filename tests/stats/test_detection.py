"""Calendar, detectors and forecasts on known inputs, and the evaluations in small."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from tiaojie.stats import calendar
from tiaojie.stats.detection import (
    C2Params,
    Detector,
    NbCusumParams,
    Series,
    c2_episodes,
    cusum_episodes,
    ears_c2,
    fit_calendar,
    nb_cusum,
)
from tiaojie.stats.evaluation import run_detection_benchmark, run_forecast_benchmark
from tiaojie.stats.forecast import Forecaster, nb_interval
from tiaojie.stats.synthetic_counts import linyi_townships

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def townships(divisions_dir: object) -> list:
    everything = linyi_townships(str(divisions_dir))
    counties = sorted({t.county for t in everything})[:4]
    return [t for t in everything if t.county in counties]


def test_calendar_knows_holidays_makeup_days_and_the_spring_festival() -> None:
    assert calendar.spring_festival(2026) == date(2026, 2, 17)
    assert calendar.spring_festival(2027) == date(2027, 2, 6)  # computed, not listed
    assert calendar.is_day_off(date(2026, 10, 1)) and not calendar.is_working_day(date(2026, 10, 1))
    assert calendar.is_makeup_workday(date(2026, 1, 4)) and calendar.is_working_day(
        date(2026, 1, 4)
    )  # a Sunday
    assert calendar.after_long_closure(date(2026, 10, 8))
    assert calendar.cny_offset(date(2026, 2, 10)) == -7
    assert calendar.harvest(date(2026, 6, 1)) == "summer" and calendar.harvest(date(2026, 8, 1)) is None
    assert calendar.local_day(calendar.day_start(date(2026, 3, 2))) == date(2026, 3, 2)


def test_calendar_model_recovers_a_weekly_rhythm_and_closures() -> None:
    rng = np.random.default_rng(1)
    days = calendar.days_between(date(2024, 1, 1), date(2025, 12, 31))
    rhythm = (1.3, 1.1, 1.0, 1.0, 0.9, 0.4, 0.3)
    mean = np.array([40 * (0.25 if calendar.is_day_off(d) else rhythm[d.weekday()]) for d in days])
    model = fit_calendar(days, rng.poisson(mean))
    fitted = model.intensity(days) * mean.mean()
    assert np.abs(fitted / mean - 1).mean() < 0.08


def test_ears_c2_by_hand() -> None:
    counts = np.array([[1, 2, 3, 2, 1, 2, 3, 0, 0, 10]], dtype=float)
    stat = ears_c2(counts, C2Params())
    baseline = counts[0, 0:7]  # days t-9 .. t-3 for t = 9
    assert stat[0, 9] == pytest.approx((10 - baseline.mean()) / baseline.std(ddof=1))
    assert [e.onset for e in c2_episodes(stat, C2Params())] == [9]


def test_nb_cusum_alarms_on_a_surge_and_not_on_noise() -> None:
    rng = np.random.default_rng(2)
    counts = rng.poisson(0.5, size=(50, 120)).astype(float)
    counts[7, 80:85] += 3
    expected = np.full_like(counts, 0.5)
    stat = nb_cusum(counts, expected, np.full(50, 10.0), NbCusumParams())
    episodes = cusum_episodes(stat, NbCusumParams().h)
    assert next((e.series, e.onset) for e in episodes if e.series == 7)[1] in range(80, 84)
    assert len([e for e in episodes if e.series != 7]) <= 1
    surge = next(e for e in episodes if e.series == 7)
    assert surge.ended is not None  # released after the surge ended (quiet-week restart)


def test_detector_runs_prospectively_on_a_table() -> None:
    days = calendar.days_between(date(2025, 1, 1), date(2025, 6, 30))
    rows = [(d, "371399", "371399001", "labour", 1) for d in days if d.weekday() == 0]
    rows += [(date(2025, 6, 2) + timedelta(days=i), "371399", "371399001", "labour", 6) for i in range(3)]
    detection = Detector("nbcusum").run(Series.from_rows(rows))
    onsets = [(detection.series.keys[e.series], detection.series.days[e.onset]) for e in detection.episodes]
    assert (("371399", "371399001", "labour"), date(2025, 6, 2)) in onsets or (
        ("371399", "371399001", "labour"),
        date(2025, 6, 3),
    ) in onsets


def test_the_seasonal_cusum_beats_ears_c2_at_no_more_false_alarms(townships: list) -> None:
    result = run_detection_benchmark(townships)
    nb, c2 = result.test["nbcusum"], result.test["c2"]
    assert nb.outbreaks >= 100
    assert nb.share > c2.share + 0.15
    assert nb.false_per_county_month <= max(c2.false_per_county_month, result.target_false_alarms) + 0.25


def test_negative_binomial_intervals() -> None:
    assert nb_interval(10, 10, 0.8) == (6, 14)  # Poisson(10): 10% and 90% points
    lo, hi = nb_interval(10, 40, 0.8)
    assert lo < 6 and hi > 14
    assert nb_interval(0, 0, 0.95) == (0, 0)


def test_forecasts_beat_seasonal_naive_with_honest_intervals(townships: list) -> None:
    result = run_forecast_benchmark(townships, origins=4)
    assert result.mase_model < 0.9 * result.mase_snaive
    assert 0.78 <= result.coverage[0.8] <= 0.95 and result.coverage[0.95] >= 0.92


def test_forecast_with_little_history_is_flat_and_wide() -> None:
    days = calendar.days_between(date(2026, 1, 5), date(2026, 1, 25))
    counts = np.ones((1, len(days))) * 2
    weeks = Forecaster().forecast(days, [("371399", "labour")], counts)[0]
    assert len(weeks) == 4 and all(10 < w.mean < 18 for w in weeks)
    assert weeks[0].start == date(2026, 1, 26)
