"""Intake settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from tiaojie.runtime.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    port: int = 8001
    database_name: str = "tiaojie_intake"
    acceptance_days: int = Field(default=3, ge=1, description="statutory acceptance clock (受理)")
    duplicate_window_days: int = Field(default=30, ge=1)
