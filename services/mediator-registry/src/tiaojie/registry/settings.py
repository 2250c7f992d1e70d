"""Registry settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tiaojie.runtime.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    # Tokens must name this service (`aud`); not a setting, so no test or deployment can widen it.
    audience: ClassVar[str | None] = "registry"
    service_name: str = "registry"
    port: int = 8003
    database_name: str = "tiaojie_registry"
    # Rosters are uploaded as whole workbooks: allow more than the mesh's default body size.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    default_capacity: int = Field(default=20, ge=1, description="open cases a full-time mediator may carry")
    part_time_capacity: int = Field(default=8, ge=1, description="open cases a part-time mediator may carry")
    # Lowest grade number (1 is the highest grade) a mediator needs for a risk level;
    # levels not listed need no grade. TIAOJIE_REQUIRED_GRADE='{"grave": 2, "serious": 3}'.
    required_grade: dict[str, int] = Field(default_factory=lambda: {"grave": 2, "serious": 3})
    # Weights of the score components (they need not sum to 1; the breakdown shows each).
    weights: dict[str, float] = Field(
        default_factory=lambda: {"specialty": 0.3, "grade_fit": 0.1, "headroom": 0.3, "fairness": 0.3}
    )
    fairness_window_days: int = Field(default=90, ge=1, description="assignments counted for fairness")
    max_escalation_depth: int = Field(default=6, ge=1)
    runners_up: int = Field(default=3, ge=0, le=20)

    expiring_within_days: int = Field(default=90, ge=1)
    committee_min_members: int = Field(default=3, ge=1)
    committee_max_members: int = Field(default=9, ge=1)
    gauges_refresh_seconds: float = Field(default=60.0, gt=0)
    # The audit of the load ledgers (recovery.py): how often, and how old a reservation or a
    # pending plan must be before it counts as left behind by a writer that is gone.
    ledger_audit_seconds: float = Field(default=600.0, gt=0)
    ledger_audit_grace: float = Field(default=60.0, ge=0)
    import_max_rows: int = Field(default=20000, ge=1)
