"""Referral settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from tiaojie.runtime.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    service_name: str = "referral"
    port: int = 8002
    database_name: str = "tiaojie_referral"
