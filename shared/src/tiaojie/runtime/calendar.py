"""China's time for every service: one UTC+8 zone, local days, and the working-day calendar.

China has used UTC+8 all year since 1991 (no daylight saving), so a fixed offset is exact
and needs no time-zone data on the server. Statutory clocks, case-number years, reports
and the detectors' days are all counted in it, whatever the server's own zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def local_day(at: datetime) -> date:
    """The local (China) calendar day of an instant (a naive instant is taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CHINA_TZ).date()


def day_start(day: date) -> datetime:
    """The instant a local day begins, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ).astimezone(UTC)
