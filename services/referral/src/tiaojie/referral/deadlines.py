"""The statutory clocks of referrals and transfers, their extensions, and their timers.

Response: accept or decline within `response_working_days` working days (the day of
receipt does not count). Handling: calendar days from acceptance, the day of acceptance
not counted, a last day that is not a working day moved to the next working day (as
procedural periods are, 民事诉讼法 第八十五条); the deadline is the end of that day in
Beijing time. 催办 fires when `reminder_share` of the time is used; overdue at the due
time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tiaojie.referral.models import Timer
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.calendar import WorkCalendar, end_of_day, local_day
from tiaojie.runtime.errors import Conflict, FieldError, Invalid

RESPONSE = "response"
HANDLING = "handling"
REMIND = "remind"
OVERDUE = "overdue"


@dataclass(frozen=True)
class ClockRule:
    """How long a kind of hand-over may take and how it may be extended."""

    days: int
    extension: str | None = None  # agreement (repeatable, by consent) | once | None
    extension_days: int = 0  # the most one extension may add


class DeadlineRules:
    """Computes due times from the settings and the working-day calendar."""

    def __init__(self, settings: ReferralSettings, calendar: WorkCalendar) -> None:
        self.settings = settings
        self.calendar = calendar
        s = settings
        self.rules: dict[str, ClockRule] = {
            "delegation": ClockRule(s.delegation_days, "agreement", s.delegation_extension_max_days),
            "entrustment_ordinary": ClockRule(s.entrustment_ordinary_days),
            "entrustment_simplified": ClockRule(s.entrustment_simplified_days),
            "petition": ClockRule(s.petition_days, "once", s.petition_extension_days),
            "police": ClockRule(s.police_days),
            "hotline": ClockRule(s.hotline_days),
            "government": ClockRule(s.government_days),
            # Hand-overs between mediation bodies (交办): the mediation clock.
            "mediation": ClockRule(s.mediation_days, "agreement", s.mediation_extension_max_days),
        }

    def rule(self, kind: str) -> ClockRule:
        try:
            return self.rules[kind]
        except KeyError:
            raise Invalid(
                [FieldError("referral_kind", "unknown_kind", "移交类型无效", "unknown referral kind")]
            ) from None

    def response_due(self, received_at: datetime) -> datetime:
        """End of the n-th working day after the day of receipt."""
        day = self.calendar.add_working_days(local_day(received_at), self.settings.response_working_days)
        return end_of_day(day)

    def period_end(self, start: datetime, days: int) -> datetime:
        """End of the day `days` calendar days after `start`'s day, moved off non-working days."""
        last = self.calendar.next_working_day(local_day(start) + timedelta(days=days))
        return end_of_day(last)

    def handling_due(self, kind: str, start: datetime, days: int | None = None) -> datetime:
        return self.period_end(start, days if days is not None else self.rule(kind).days)

    def extended_due(
        self, kind: str, *, due: datetime, days: int, by_agreement: bool, extensions_so_far: int
    ) -> datetime:
        """The new due time of an extension, or why it is not allowed."""
        rule = self.rule(kind)
        if rule.extension is None:
            raise Conflict("该类型的期限不可延长", f"a {kind} deadline cannot be extended")
        if rule.extension == "once" and extensions_so_far >= 1:
            raise Conflict("该期限只能延长一次，已延长过", f"a {kind} deadline may be extended only once")
        if rule.extension == "agreement" and not by_agreement:
            raise Invalid(
                [
                    FieldError(
                        "by_agreement",
                        "agreement_required",
                        "延长期限须经各方当事人同意",
                        "an extension needs the parties' agreement",
                    )
                ]
            )
        if days > rule.extension_days:
            raise Invalid(
                [
                    FieldError(
                        "days",
                        "extension_too_long",
                        f"延长不能超过{rule.extension_days}日",
                        f"an extension may add at most {rule.extension_days} days",
                    )
                ]
            )
        # The extension runs on from the current deadline's last day.
        return self.period_end(due - timedelta(seconds=1), days)

    def timers(self, stage: str, *, start: datetime, due: datetime) -> dict[str, Timer]:
        """催办 at the configured share of the time, and overdue at the due time."""
        remind_at = start + (due - start) * self.settings.reminder_share
        return {
            f"{stage}-{REMIND}": Timer(stage=stage, action=REMIND, at=remind_at, due=due, start=start),
            f"{stage}-{OVERDUE}": Timer(stage=stage, action=OVERDUE, at=due, due=due, start=start),
        }
