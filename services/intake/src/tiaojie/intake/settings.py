"""Intake settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from limits import parse_many
from pydantic import Field, field_validator

from tiaojie.runtime.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    # Tokens must name this service (`aud`); not a setting, so no test or deployment can widen it.
    audience: ClassVar[str | None] = "intake"
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
    # The citizen channel: limits per client address on calls without a token, in the
    # `limits` notation ("10/minute;100/hour"), counted per replica (see the README).
    citizen_submission_limit: str = Field(
        default="10/minute;60/hour", description="anonymous POST /disputes per client address"
    )
    tracking_limit: str = Field(default="60/minute;600/hour", description="GET /track per client address")
    # Peers whose X-Forwarded-For names the client (addresses or networks); none by default,
    # so a forwarded header from anyone else is ignored.
    trusted_proxies: list[str] = Field(default_factory=list)
    # The audit log is kept at least six months (网络安全法 Art. 21); pruned periodically
    # because FerretDB 1.24 has no TTL indexes.
    audit_retention_days: int = Field(default=365, ge=180)
    audit_prune_interval: float = Field(default=3600.0, gt=0, description="seconds between prunes")
    # Lists: the largest page a caller may ask for.
    max_page_size: int = Field(default=200, ge=1, le=1000)

    @field_validator("citizen_submission_limit", "tracking_limit")
    @classmethod
    def _limits(cls, value: str) -> str:
        parse_many(value)  # refuse a malformed limit at start, not at the first request
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # an address or a network; never "*"
        return value
