"""Forecasts of the next weeks' cases per county × category, with prediction intervals.

The model is the detectors' (see detection.py): expected daily cases = level × calendar
intensity, the intensity of each category a ridge-penalised Poisson regression of the
deployment's daily totals on weekday, days off and make-up days, the Spring Festival
weeks, the harvests, a yearly cycle and a trend; the level an exponentially weighted rate
over recent days, shrunk toward the category's rate across counties. A week's total is
the sum of its days; its interval comes from a negative binomial with the same mean and a
variance that adds day-to-day over-dispersion, the uncertainty of the level, and a drift
of the level that grows with the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from tiaojie.stats import calendar
from tiaojie.stats.detection import CalendarModel, estimate_size, expected_counts, fit_calendar

LEVELS = (0.8, 0.95)


@dataclass(frozen=True)
class WeekForecast:
    start: date
    end: date  # inclusive
    mean: float
    intervals: dict[float, tuple[int, int]]  # level -> (lower, upper), inclusive bounds


@dataclass(frozen=True)
class ForecastParams:
    half_life_days: float = 56.0
    prior_days: float = 14.0
    drift_per_week: float = 0.04  # relative sd of the level's random walk per week ahead
    min_history_days: int = 56


def nb_interval(mean: float, variance: float, level: float) -> tuple[int, int]:
    """Central interval of a negative binomial (Poisson when not over-dispersed)."""
    if mean <= 0:
        return (0, 0)
    tail = (1 - level) / 2
    top = int(mean + 12 * math.sqrt(max(variance, mean)) + 20)
    k = np.arange(top + 1, dtype=float)
    if variance <= mean * (1 + 1e-9):
        logpmf = -mean + k * math.log(mean) - np.cumsum(np.log(np.maximum(k, 1)))
    else:
        size = mean * mean / (variance - mean)
        p = size / (size + mean)
        steps = np.log((k[1:] - 1 + size) / k[1:]) + math.log(1 - p)
        logpmf = np.concatenate([[size * math.log(p)], size * math.log(p) + np.cumsum(steps)])
    cdf = np.cumsum(np.exp(logpmf))
    lower = int(np.searchsorted(cdf, tail))
    upper = int(np.searchsorted(cdf, 1 - tail))
    return (lower, min(upper, top))


@dataclass
class Forecaster:
    params: ForecastParams = ForecastParams()

    def forecast(
        self,
        days: list[date],
        keys: list[tuple[str, str]],
        counts: np.ndarray,
        *,
        weeks: int = 4,
        levels: tuple[float, ...] = LEVELS,
    ) -> list[list[WeekForecast]]:
        """Forecast `weeks` weeks after the last day of `days` for every (county, category).

        counts: (series, days) daily cases of every (county, category) key.
        """
        counts = np.asarray(counts, dtype=float)
        origin = days[-1] + timedelta(days=1)
        future = calendar.days_between(origin, origin + timedelta(days=7 * weeks - 1))
        categories = sorted({k[1] for k in keys})
        intensity_past = np.ones_like(counts)
        intensity_future = np.ones((len(keys), len(future)))
        sizes = np.full(len(keys), 20.0)
        history_ok = len(days) >= self.params.min_history_days
        for category in categories:
            rows = np.array([k[1] == category for k in keys])
            totals = counts[rows].sum(axis=0)
            if history_ok:
                model: CalendarModel = fit_calendar(days, totals)
                intensity_past[rows] = model.intensity(days)
                intensity_future[rows] = model.intensity(future)
        groups = np.array([categories.index(k[1]) for k in keys])
        # The level at the origin: expected_counts with no guard gives, for day t, the
        # level from days before t; append the first future day to read it at the origin.
        extended = np.hstack([counts, np.zeros((len(keys), 1))])
        extended_f = np.hstack([intensity_past, intensity_future[:, :1]])
        expected = expected_counts(
            extended,
            extended_f,
            groups,
            guard_days=0,
            half_life_days=self.params.half_life_days,
            prior_days=self.params.prior_days,
        )
        level = expected[:, -1] / np.maximum(extended_f[:, -1], 1e-12)
        # Over-dispersion around the one-step-ahead baseline, over the last year, per category.
        recent = slice(max(self.params.min_history_days, counts.shape[1] - 365), counts.shape[1])
        for category in categories:
            rows = np.array([k[1] == category for k in keys])
            if history_ok:
                sizes[rows] = estimate_size(counts[rows, recent], expected[rows, :-1][:, recent])
        decay = 0.5 ** (1 / self.params.half_life_days)
        weights = decay ** np.arange(len(days))[::-1]
        effective_cases = (counts * weights).sum(axis=1) + self.params.prior_days * level
        out: list[list[WeekForecast]] = []
        for i in range(len(keys)):
            series: list[WeekForecast] = []
            for w in range(weeks):
                f = intensity_future[i, 7 * w : 7 * (w + 1)]
                daily = level[i] * f
                mean = float(daily.sum())
                variance = float(np.sum(daily + daily**2 / sizes[i]))
                relative = 1 / max(effective_cases[i], 1.0) + (self.params.drift_per_week**2) * (w + 1)
                variance += mean * mean * relative
                series.append(
                    WeekForecast(
                        start=future[7 * w],
                        end=future[7 * w + 6],
                        mean=mean,
                        intervals={lv: nb_interval(mean, variance, lv) for lv in levels},
                    )
                )
            out.append(series)
        return out


def weekly_totals(counts: np.ndarray, days: list[date], start: date, weeks: int) -> np.ndarray:
    """Sums of daily counts over `weeks` consecutive 7-day blocks from `start`."""
    begin = (start - days[0]).days
    return np.stack(
        [counts[:, begin + 7 * w : begin + 7 * (w + 1)].sum(axis=1) for w in range(weeks)], axis=1
    )
