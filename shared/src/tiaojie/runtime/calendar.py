"""China's time for every service: one UTC+8 zone, local days, and the working-day calendar.

China has used UTC+8 all year since 1991 (no daylight saving), so a fixed offset is exact
and needs no time-zone data on the server. Statutory clocks, case-number years, reports
and the detectors' days are all counted in it, whatever the server's own zone.

Working days are weekends, public holidays and adjusted working days (调休): data
(data/holidays.toml, one State Council notice per year), not code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from importlib import resources

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def local_day(at: datetime) -> date:
    """The local (China) calendar day of an instant (a naive instant is taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CHINA_TZ).date()


def day_start(day: date) -> datetime:
    """The instant a local day begins, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ).astimezone(UTC)


@dataclass(frozen=True)
class YearCalendar:
    year: int
    source: str
    provisional: bool
    holidays: frozenset[date]
    working_days: frozenset[date]


@dataclass(frozen=True)
class WorkCalendar:
    """Answers "is this a working day" and counts working days forward."""

    years: dict[int, YearCalendar] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, text: str) -> WorkCalendar:
        raw = tomllib.loads(text)
        years: dict[int, YearCalendar] = {}
        for key, spec in raw.get("years", {}).items():
            holidays: set[date] = set()
            for span in spec.get("holidays", []):
                day = span["from"]
                while day <= span["to"]:
                    holidays.add(day)
                    day += timedelta(days=1)
            working = frozenset(spec.get("working_days", []))
            overlap = holidays & working
            if overlap:
                raise ValueError(f"{key}: days both holiday and working day: {sorted(overlap)}")
            years[int(key)] = YearCalendar(
                year=int(key),
                source=spec.get("source", ""),
                provisional=bool(spec.get("provisional", False)),
                holidays=frozenset(holidays),
                working_days=working,
            )
        return cls(years)

    def covers(self, year: int) -> bool:
        """True when the year's notice is in the data (not merely its statutory days)."""
        known = self.years.get(year)
        return known is not None and not known.provisional

    def is_working_day(self, day: date) -> bool:
        known = self.years.get(day.year)
        if known is not None:
            if day in known.working_days:
                return True
            if day in known.holidays:
                return False
        return day.weekday() < 5

    def next_working_day(self, day: date) -> date:
        """The day itself if it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (the start day itself does not count)."""
        while count > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day


def end_of_day(day: date) -> datetime:
    """The instant a China calendar day ends (midnight after it), in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), CHINA_TZ).astimezone(UTC)


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """The calendar shipped with the runtime (data/holidays.toml: one State Council notice per year)."""
    text = resources.files("tiaojie.runtime").joinpath("data/holidays.toml").read_text("utf-8")
    return WorkCalendar.from_toml(text)
