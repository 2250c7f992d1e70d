"""Intake settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from tiaojie.runtime.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    port: int = 8001
    database_name: str = "tiaojie_intake"
    # Statutory clocks (DESIGN.md §2).
    acceptance_days: int = Field(
        default=3, ge=1, description="acceptance decision (受理) within this many days"
    )
    mediation_days: int = Field(default=30, ge=1, description="mediation concluded within this many days")
    max_extension_days: int = Field(default=30, ge=1, description="longest consented extension (once)")
    judicial_confirmation_days: int = Field(
        default=30, ge=1, description="joint application after the agreement"
    )
    # Duplicates: same applicant, respondent and category within this window.
    duplicate_window_days: int = Field(default=30, ge=1)
    # Risk signals.
    repeat_visit_window_days: int = Field(default=365, ge=1)
    repeat_visits: int = Field(default=2, ge=1, description="earlier visits that make a repeat visitor")
    group_size: int = Field(default=5, ge=2, description="parties that make a dispute collective (群体性)")
    large_amount: float = Field(default=100_000, gt=0)
    very_large_amount: float = Field(default=1_000_000, gt=0)
