"""China's working calendar as the detectors and forecasts see it.

Dispute registrations follow the office week (busy Mondays, quiet weekends), close on
official holidays (with weekend make-up working days, 调休), surge before the Spring
Festival (wage arrears) and around the harvests (三夏, 三秋: land and village disputes).
Holidays come from the `holidays` package (official days off, substitutions, and the
lunar dates of future years); days are local (Asia/Shanghai, UTC+8, no daylight saving).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

import holidays
import numpy as np

# China has used UTC+8 all year since 1991: a fixed offset is exact and needs no tz data.
LOCAL_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
_SUBSTITUTED = re.compile(r"substituted from (\d{2})/(\d{2})/(\d{4})")

# Harvest seasons of the Linyi plain (wheat in early summer, corn and peanuts in autumn).
SUMMER_HARVEST = ((5, 25), (6, 15))
AUTUMN_HARVEST = ((9, 20), (10, 20))
# Weeks around the Spring Festival, as offsets in days from the lunar new year.
CNY_BINS = (-28, -21, -14, -7, 0, 7, 14, 21, 28)


def local_day(at: datetime) -> date:
    """The local (Asia/Shanghai) calendar day of an instant."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(LOCAL_TZ).date()


def day_start(day: date) -> datetime:
    """The instant a local day begins, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(UTC)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last, inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@lru_cache(maxsize=64)
def _year(year: int) -> tuple[frozenset[date], frozenset[date], date]:
    """Days off, make-up working days and the lunar new year of one year."""
    table = holidays.country_holidays("CN", years=[year - 1, year, year + 1])
    off = frozenset(d for d in table if d.year == year)
    makeup = set()
    new_year: date | None = None
    for day, name in table.items():
        for match in _SUBSTITUTED.finditer(str(name)):
            month, dom, yr = (int(g) for g in match.groups())
            if yr == year:
                makeup.add(date(yr, month, dom))
        if day.year == year and "Spring Festival" in str(name) and (new_year is None or day < new_year):
            new_year = day
    assert new_year is not None, f"no Spring Festival found for {year}"
    return off, frozenset(makeup), new_year


def is_day_off(day: date) -> bool:
    """An official holiday or substituted day off (not an ordinary weekend)."""
    return day in _year(day.year)[0]


def is_makeup_workday(day: date) -> bool:
    """A weekend day that is a working day (调休)."""
    return day in _year(day.year)[1]


def is_working_day(day: date) -> bool:
    return is_makeup_workday(day) or (day.weekday() < 5 and not is_day_off(day))


def spring_festival(year: int) -> date:
    """The first day of the lunar new year in a Gregorian year."""
    return _year(year)[2]


def cny_offset(day: date) -> int:
    """Days from the nearest lunar new year (negative before it)."""
    candidates = [spring_festival(y) for y in (day.year - 1, day.year, day.year + 1)]
    return min(((day - c).days for c in candidates), key=abs)


def harvest(day: date) -> str | None:
    """'summer' or 'autumn' during the harvest seasons, else None."""
    md = (day.month, day.day)
    if SUMMER_HARVEST[0] <= md <= SUMMER_HARVEST[1]:
        return "summer"
    if AUTUMN_HARVEST[0] <= md <= AUTUMN_HARVEST[1]:
        return "autumn"
    return None


def after_long_closure(day: date) -> bool:
    """The first working day after three or more days without work (a backlog day)."""
    if not is_working_day(day):
        return False
    closed = 0
    probe = day - timedelta(days=1)
    while not is_working_day(probe) and closed < 15:
        closed += 1
        probe -= timedelta(days=1)
    return closed >= 3


FEATURES: tuple[str, ...] = (
    "intercept",
    *(f"dow_{d}" for d in ("tue", "wed", "thu", "fri", "sat", "sun")),
    "day_off",
    "makeup_workday",
    "after_closure",
    *(f"cny_{lo}_{hi}" for lo, hi in itertools.pairwise(CNY_BINS)),
    "harvest_summer",
    "harvest_autumn",
    "year_sin1",
    "year_cos1",
    "year_sin2",
    "year_cos2",
    "trend_years",
)

# Reference day of the trend term: keeps the design's numbers small.
TREND_ORIGIN = date(2024, 1, 1)


@lru_cache(maxsize=8192)
def _row(day: date) -> tuple[float, ...]:
    row = [1.0]
    off = is_day_off(day)
    makeup = is_makeup_workday(day)
    dow = day.weekday()
    # A day off has no weekday rhythm of its own; a make-up working day behaves like a
    # Monday-to-Friday day whatever its weekday.
    row += [1.0 if (not off and not makeup and dow == d) else 0.0 for d in range(1, 7)]
    row += [1.0 if off else 0.0, 1.0 if makeup else 0.0, 1.0 if after_long_closure(day) else 0.0]
    offset = cny_offset(day)
    row += [1.0 if lo <= offset < hi else 0.0 for lo, hi in itertools.pairwise(CNY_BINS)]
    season = harvest(day)
    row += [1.0 if season == "summer" else 0.0, 1.0 if season == "autumn" else 0.0]
    angle = 2 * np.pi * (day.timetuple().tm_yday - 1) / 365.25
    row += [np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)]
    row.append((day - TREND_ORIGIN).days / 365.25)
    return tuple(float(v) for v in row)


def design(days: list[date]) -> np.ndarray:
    """The calendar design matrix (one row per day, columns as FEATURES)."""
    return np.array([_row(d) for d in days], dtype=float)
