"""Synthetic daily dispute counts for a city's townships, with planted outbreaks.

Used by the detection and forecast evaluations (benchmarks/hotspots, benchmarks/forecast)
and their tests. The generator is deliberately richer than the detectors' model so the
evaluation is not circular: urban streets and rural towns differ in level and category
mix; the week has an office rhythm; official days off close offices and the first day
after a long closure has a backlog; wage-arrears (劳动争议) disputes climb for weeks
before the Spring Festival and family disputes rise around it; land and village disputes
rise in the harvests; school, consumer and tourism disputes follow terms and shopping
festivals; counts grow a few percent a year; a shared day-and-township factor and
gamma-Poisson noise make them over-dispersed.

Outbreaks are planted on top: a category surging in one township or in 2-4 neighbouring
townships of a county, for 3-21 days, flat or ramping, of varied size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from tiaojie.contracts.common import Category
from tiaojie.stats import calendar
from tiaojie.stats.detection import Series

# Share of each category among a township's disputes (urban street, rural town).
CATEGORY_MIX: dict[Category, tuple[float, float]] = {
    Category.MARRIAGE_FAMILY: (0.17, 0.20),
    Category.NEIGHBOURHOOD: (0.20, 0.24),
    Category.HOUSING_HOMESTEAD: (0.04, 0.09),
    Category.CONTRACT: (0.07, 0.04),
    Category.PRODUCTION_BUSINESS: (0.03, 0.04),
    Category.DAMAGES: (0.07, 0.06),
    Category.LABOUR: (0.06, 0.04),
    Category.VILLAGE_AFFAIRS: (0.01, 0.05),
    Category.FOREST_LAND: (0.005, 0.05),
    Category.LAND_EXPROPRIATION: (0.02, 0.025),
    Category.ENVIRONMENT: (0.012, 0.015),
    Category.ROAD_TRAFFIC: (0.07, 0.05),
    Category.MEDICAL: (0.02, 0.01),
    Category.PROPERTY_MANAGEMENT: (0.07, 0.005),
    Category.CONSUMER: (0.04, 0.015),
    Category.TOURISM: (0.004, 0.003),
    Category.INTELLECTUAL_PROPERTY: (0.004, 0.001),
    Category.ECOMMERCE: (0.01, 0.004),
    Category.FINANCE_INSURANCE: (0.02, 0.01),
    Category.CAMPUS_SAFETY: (0.008, 0.007),
    Category.OTHER: (0.05, 0.05),
}
DOW = (1.25, 1.10, 1.05, 1.0, 0.95, 0.45, 0.35)
OUTBREAK_CATEGORIES = (
    Category.LABOUR,
    Category.LAND_EXPROPRIATION,
    Category.ENVIRONMENT,
    Category.PROPERTY_MANAGEMENT,
    Category.VILLAGE_AFFAIRS,
    Category.NEIGHBOURHOOD,
    Category.CONSUMER,
    Category.HOUSING_HOMESTEAD,
    Category.FOREST_LAND,
    Category.CONTRACT,
    Category.MARRIAGE_FAMILY,
    Category.ROAD_TRAFFIC,
)


@dataclass(frozen=True)
class Township:
    county: str
    code: str
    urban: bool


@dataclass(frozen=True)
class Outbreak:
    county: str
    townships: tuple[str, ...]
    category: str
    start: date
    end: date  # inclusive
    extra: int  # cases planted in total
    size: str  # small | medium | large


@dataclass
class Synthetic:
    series: Series  # township × category
    outbreaks: list[Outbreak]
    townships: list[Township]


def linyi_townships(divisions_path: str) -> list[Township]:
    """Linyi's (3713) real townships from the administrative-division data."""
    from tiaojie.runtime.divisions import load_divisions

    divisions = load_divisions(divisions_path)
    found = []
    for county in divisions.counties_of_city("3713"):
        for township in divisions.townships_of(county.code):
            found.append(Township(county.code, township.code, township.name.endswith("街道")))
    return found


def _category_factor(category: Category, day: date, urban: bool) -> float:
    offset = calendar.cny_offset(day)
    month = day.month
    season = calendar.harvest(day)
    factor = 1.0
    if category == Category.LABOUR and -35 <= offset < 0:
        factor *= 1.0 + 1.4 * max(0.0, 1 - abs(offset + 12) / 24)  # peaks 12 days before
    if category == Category.MARRIAGE_FAMILY and -7 <= offset <= 21:
        factor *= 1.4
    if category in (Category.NEIGHBOURHOOD, Category.ENVIRONMENT) and month in (6, 7, 8):
        factor *= 1.25
    if category == Category.ROAD_TRAFFIC and month in (1, 10, 12):
        factor *= 1.15
    if category in (
        Category.FOREST_LAND,
        Category.VILLAGE_AFFAIRS,
        Category.HOUSING_HOMESTEAD,
        Category.PRODUCTION_BUSINESS,
    ):
        if season and not urban:
            factor *= 1.6
        elif month in (3, 4):
            factor *= 1.2
    if category == Category.CAMPUS_SAFETY:
        factor *= 0.35 if month in (7, 8) or abs(offset) <= 14 else 1.25
    if category == Category.PROPERTY_MANAGEMENT and month in (12, 1):
        factor *= 1.3
    if category in (Category.CONSUMER, Category.ECOMMERCE) and (
        (month == 11 and day.day >= 12) or (month == 6 and day.day >= 19)
    ):
        factor *= 1.6
    if category == Category.TOURISM and ((month == 10 and day.day <= 12) or month in (7, 8)):
        factor *= 1.8
    if season and not urban:
        factor *= 0.85  # busy in the fields: fewer visits to the office for everything
    return factor


def _day_factor(day: date) -> float:
    if calendar.is_day_off(day):
        return 0.25
    base = 0.9 if calendar.is_makeup_workday(day) else DOW[day.weekday()]
    if calendar.after_long_closure(day):
        base *= 1.5
    return base


def generate(
    townships: list[Township],
    *,
    first: date,
    last: date,
    seed: int,
    outbreaks_from: date | None = None,
    outbreaks_per_month: float = 10.0,
    daily_per_township: float = 1.6,
) -> Synthetic:
    """Daily counts per township × category from `first` to `last` (inclusive)."""
    rng = np.random.default_rng(seed)
    days = calendar.days_between(first, last)
    categories = list(CATEGORY_MIX)
    n_days = len(days)
    keys: list[tuple[str, str | None, str]] = []
    means = []
    day_factor = np.array([_day_factor(d) for d in days])
    growth = np.array([1.06 ** ((d - first).days / 365.25) for d in days])
    # Category factors depend on urban/rural only: compute both once.
    cat_factor = {
        (c, urban): np.array([_category_factor(c, d, urban) for d in days])
        for c in categories
        for urban in (True, False)
    }
    level = rng.lognormal(mean=np.log(daily_per_township), sigma=0.45, size=len(townships))
    for j, township in enumerate(townships):
        mix = np.array([CATEGORY_MIX[c][0 if township.urban else 1] for c in categories])
        mix = mix * rng.lognormal(0, 0.25, size=len(mix))  # each place has its own mix
        mix /= mix.sum()
        scale = level[j] * (1.5 if township.urban else 1.0)
        for k, category in enumerate(categories):
            keys.append((township.county, township.code, str(category)))
            means.append(scale * mix[k] * cat_factor[(category, township.urban)] * day_factor * growth)
    mu = np.array(means)
    # A busy or quiet day at one township's office moves all its categories together.
    shared = rng.gamma(20.0, 1 / 20.0, size=(len(townships), n_days))
    mu *= np.repeat(shared, len(categories), axis=0)
    counts = rng.poisson(rng.gamma(6.0, mu / 6.0)).astype(float)

    outbreaks: list[Outbreak] = []
    if outbreaks_from is not None:
        outbreaks = _plant(
            rng, townships, keys, counts, days, outbreaks_from, outbreaks_per_month, day_factor
        )
    return Synthetic(Series(days, keys, counts), outbreaks, townships)


def _plant(
    rng: np.random.Generator,
    townships: list[Township],
    keys: list[tuple[str, str | None, str]],
    counts: np.ndarray,
    days: list[date],
    start_from: date,
    per_month: float,
    day_factor: np.ndarray,
) -> list[Outbreak]:
    index = {k: i for i, k in enumerate(keys)}
    by_county: dict[str, list[Township]] = {}
    for township in townships:
        by_county.setdefault(township.county, []).append(township)
    counties = sorted(by_county)
    begin = (start_from - days[0]).days
    months = (len(days) - begin) / 30.4
    planted: list[Outbreak] = []
    for _ in range(round(per_month * months)):
        county = counties[rng.integers(len(counties))]
        local = by_county[county]
        spread = 1 if rng.random() < 0.6 else int(rng.integers(2, 5))
        first_idx = int(rng.integers(len(local)))
        chosen = [local[(first_idx + i) % len(local)] for i in range(min(spread, len(local)))]
        category = str(OUTBREAK_CATEGORIES[rng.integers(len(OUTBREAK_CATEGORIES))])
        length = int(np.clip(round(np.exp(rng.uniform(np.log(3), np.log(21)))), 3, 21))
        start = begin + int(rng.integers(0, len(days) - begin - length))
        size = ("small", "medium", "large")[rng.choice(3, p=(0.4, 0.4, 0.2))]
        per_day = {"small": (0.25, 0.5), "medium": (0.5, 1.0), "large": (1.0, 2.5)}[size]
        rate = rng.uniform(*per_day)
        ramp = rng.random() < 0.5
        shape = np.linspace(0.3, 1.7, length) if ramp else np.ones(length)
        total = 0
        for township in chosen:
            i = index[(county, township.code, category)]
            window = slice(start, start + length)
            extra = rng.poisson(rate * shape * day_factor[window] / day_factor[window].mean())
            counts[i, window] += extra
            total += int(extra.sum())
        planted.append(
            Outbreak(
                county=county,
                townships=tuple(t.code for t in chosen),
                category=category,
                start=days[start],
                end=days[start + length - 1],
                extra=total,
                size=size,
            )
        )
    return sorted(planted, key=lambda o: o.start)


def to_rows(series: Series) -> list[tuple[date, str, str | None, str, int]]:
    """Non-zero cells as (day, county, township, category, count) rows."""
    rows = []
    nz = np.argwhere(series.counts > 0)
    for i, t in nz:
        county, township, category = series.keys[i]
        rows.append((series.days[t], county, township, category, int(series.counts[i, t])))
    return sorted(rows, key=lambda r: (r[0], r[1], r[2] or "", r[3]))


def daterange_end(first: date, years: int) -> date:
    return date(first.year + years, first.month, first.day) - timedelta(days=1)
