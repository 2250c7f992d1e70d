"""Working days and statutory clocks: every deadline kind, extensions, holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.calendar import CHINA_TZ, WorkCalendar, default_calendar, end_of_day
from tiaojie.runtime.errors import Conflict, Invalid

pytestmark = pytest.mark.unit


def beijing(y: int, m: int, d: int, hour: int = 10) -> datetime:
    return datetime(y, m, d, hour, tzinfo=CHINA_TZ).astimezone(UTC)


def due_day(due: datetime) -> date:
    """The last calendar day a deadline allows (it ends at the following midnight)."""
    return (due.astimezone(CHINA_TZ) - timedelta(seconds=1)).date()


@pytest.fixture(scope="module")
def rules() -> DeadlineRules:
    return DeadlineRules(ReferralSettings(), default_calendar())


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 1, 1), False),  # 元旦
        (date(2025, 1, 26), True),  # Sunday worked before 春节
        (date(2025, 2, 4), False),  # 春节 last day (Tuesday)
        (date(2025, 10, 8), False),  # 国庆中秋 (Wednesday)
        (date(2025, 10, 11), True),  # Saturday worked
        (date(2026, 1, 2), False),  # 元旦 (Friday)
        (date(2026, 1, 4), True),  # Sunday worked
        (date(2026, 2, 14), True),  # Saturday worked before 春节
        (date(2026, 2, 23), False),  # 春节 (Monday)
        (date(2026, 2, 28), True),  # Saturday worked after 春节
        (date(2026, 5, 5), False),  # 劳动节 (Tuesday)
        (date(2026, 5, 9), True),  # Saturday worked
        (date(2026, 9, 25), False),  # 中秋 (Friday)
        (date(2026, 10, 7), False),  # 国庆 (Wednesday)
        (date(2026, 10, 10), True),  # Saturday worked
        (date(2026, 3, 3), True),  # an ordinary Tuesday
        (date(2026, 3, 7), False),  # an ordinary Saturday
        (date(2027, 2, 8), False),  # 春节 初三 (statutory, Monday)
        (date(2027, 6, 9), False),  # 端午 (statutory, Wednesday)
    ],
)
def test_working_days_follow_the_notices(day: date, working: bool) -> None:
    assert default_calendar().is_working_day(day) is working


def test_2027_is_provisional_until_its_notice_is_in_the_data() -> None:
    calendar = default_calendar()
    assert calendar.covers(2025) and calendar.covers(2026)
    assert not calendar.covers(2027)
    assert "待国务院办公厅" in calendar.years[2027].source


def test_a_day_cannot_be_both_holiday_and_working_day() -> None:
    bad = """
[years.2030]
holidays = [{ name = "x", from = 2030-01-01, to = 2030-01-02 }]
working_days = [2030-01-02]
"""
    with pytest.raises(ValueError, match="both holiday and working day"):
        WorkCalendar.from_toml(bad)


def test_years_outside_the_data_fall_back_to_weekends() -> None:
    calendar = default_calendar()
    assert calendar.is_working_day(date(2031, 1, 1))  # a Wednesday: no notice known
    assert not calendar.is_working_day(date(2031, 1, 4))  # Saturday


@pytest.mark.parametrize(
    ("received", "last_day"),
    [
        (beijing(2026, 3, 2), date(2026, 3, 3)),  # Monday → by the end of Tuesday
        (beijing(2026, 3, 6), date(2026, 3, 9)),  # Friday → Monday
        (beijing(2026, 3, 7), date(2026, 3, 9)),  # Saturday → Monday
        (beijing(2026, 2, 13), date(2026, 2, 14)),  # Friday before 春节 → the Saturday worked
        (beijing(2026, 2, 14), date(2026, 2, 24)),  # the Saturday worked → after the nine days
        (beijing(2026, 9, 30), date(2026, 10, 8)),  # eve of 国庆 → the first day back
        (beijing(2026, 3, 2, 23), date(2026, 3, 3)),  # late evening in Beijing still counts as Monday
    ],
)
def test_response_within_one_working_day(rules: DeadlineRules, received: datetime, last_day: date) -> None:
    due = rules.response_due(received)
    assert due_day(due) == last_day
    assert due == end_of_day(last_day)


def test_response_day_count_is_configurable() -> None:
    two = DeadlineRules(ReferralSettings(response_working_days=2), default_calendar())
    assert due_day(two.response_due(beijing(2026, 3, 6))) == date(2026, 3, 10)


@pytest.mark.parametrize(
    ("kind", "accepted", "last_day"),
    [
        ("delegation", beijing(2026, 3, 2), date(2026, 4, 1)),  # 委派: 30 days
        ("entrustment_ordinary", beijing(2026, 3, 2), date(2026, 3, 17)),  # 委托 ordinary: 15
        ("entrustment_simplified", beijing(2026, 3, 2), date(2026, 3, 9)),  # 委托 simplified: 7
        ("petition", beijing(2026, 3, 2), date(2026, 5, 6)),  # 60 days: 5-01 is 劳动节 → 5-06
        ("police", beijing(2026, 3, 2), date(2026, 4, 1)),  # configurable default 30
        ("hotline", beijing(2026, 3, 2), date(2026, 3, 17)),  # configurable default 15
        ("government", beijing(2026, 3, 2), date(2026, 4, 1)),
        ("mediation", beijing(2026, 3, 2), date(2026, 4, 1)),  # mediation 30 from acceptance
        # A last day on a holiday moves to the next working day (期间届满日遇节假日顺延).
        ("delegation", beijing(2026, 9, 5), date(2026, 10, 8)),  # 10-05 in 国庆 → 10-08
        ("entrustment_simplified", beijing(2026, 2, 9), date(2026, 2, 24)),  # 2-16 in 春节 → 2-24
        ("entrustment_ordinary", beijing(2026, 3, 7), date(2026, 3, 23)),  # 3-22 is a Sunday → Monday
        ("entrustment_simplified", beijing(2026, 2, 7), date(2026, 2, 14)),  # lands on a Saturday worked
    ],
)
def test_handling_clock_of_every_kind(
    rules: DeadlineRules, kind: str, accepted: datetime, last_day: date
) -> None:
    assert due_day(rules.handling_due(kind, accepted)) == last_day


def test_police_and_hotline_defaults_are_configurable() -> None:
    custom = DeadlineRules(ReferralSettings(police_days=10, hotline_days=5), default_calendar())
    assert due_day(custom.handling_due("police", beijing(2026, 3, 2))) == date(2026, 3, 12)
    assert due_day(custom.handling_due("hotline", beijing(2026, 3, 2))) == date(2026, 3, 9)


def test_delegation_extends_by_agreement_only_and_within_the_limit(rules: DeadlineRules) -> None:
    due = rules.handling_due("delegation", beijing(2026, 3, 2))  # 2026-04-01
    extended = rules.extended_due("delegation", due=due, days=30, by_agreement=True, extensions_so_far=0)
    assert due_day(extended) == date(2026, 5, 6)  # 05-01 falls in 劳动节 → 05-06
    again = rules.extended_due("delegation", due=extended, days=10, by_agreement=True, extensions_so_far=1)
    assert due_day(again) == date(2026, 5, 18)  # 05-16 is a Saturday → Monday
    with pytest.raises(Invalid) as no_agreement:
        rules.extended_due("delegation", due=due, days=10, by_agreement=False, extensions_so_far=0)
    assert no_agreement.value.errors[0].code == "agreement_required"
    with pytest.raises(Invalid) as too_long:
        rules.extended_due("delegation", due=due, days=31, by_agreement=True, extensions_so_far=0)
    assert too_long.value.errors[0].code == "extension_too_long"


def test_petition_extends_once_by_thirty_days(rules: DeadlineRules) -> None:
    due = rules.handling_due("petition", beijing(2026, 3, 2))  # 2026-05-06
    extended = rules.extended_due("petition", due=due, days=30, by_agreement=False, extensions_so_far=0)
    assert due_day(extended) == date(2026, 6, 5)
    with pytest.raises(Conflict):
        rules.extended_due("petition", due=extended, days=30, by_agreement=False, extensions_so_far=1)
    with pytest.raises(Invalid):
        rules.extended_due("petition", due=due, days=31, by_agreement=False, extensions_so_far=0)


@pytest.mark.parametrize("kind", ["entrustment_ordinary", "entrustment_simplified", "police", "hotline"])
def test_kinds_without_extension_refuse_it(rules: DeadlineRules, kind: str) -> None:
    due = rules.handling_due(kind, beijing(2026, 3, 2))
    with pytest.raises(Conflict):
        rules.extended_due(kind, due=due, days=5, by_agreement=True, extensions_so_far=0)


def test_reminder_fires_at_the_configured_share(rules: DeadlineRules) -> None:
    start = beijing(2026, 3, 2)
    due = start + timedelta(days=10)
    timers = rules.timers("handling", start=start, due=due)
    assert timers["handling-remind"].at == start + timedelta(days=8)
    assert timers["handling-overdue"].at == due
    half = DeadlineRules(ReferralSettings(reminder_share=0.5), default_calendar())
    assert half.timers("handling", start=start, due=due)["handling-remind"].at == start + timedelta(days=5)


def test_unknown_kind_is_a_field_error(rules: DeadlineRules) -> None:
    with pytest.raises(Invalid):
        rules.handling_due("carrier_pigeon", beijing(2026, 3, 2))
