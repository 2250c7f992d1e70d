"""Events produced by the mediator-registry service.

Organisation and mediator events are full snapshots with a version, so a consumer's
projection is an idempotent upsert that ignores older versions.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import (
    Category,
    DivisionLevel,
    MediatorGrade,
    MediatorStatus,
    OrganisationKind,
)
from tiaojie.contracts.envelope import EventData


class OrganisationUpdated(EventData):
    """Snapshot of an organisation after it was filed or changed."""

    event_type = "tiaojie.registry.OrganisationUpdated"

    organisation_id: str
    version: int
    name: str
    short_name: str
    kind: OrganisationKind
    level: DivisionLevel
    county: str
    division_code: str  # the GB/T 2260 code of its jurisdiction
    parent_id: str | None = None
    categories: list[Category] = Field(default_factory=list)
    filed: bool = True
    filed_on: date | None = None
    active: bool = True


class MediatorUpdated(EventData):
    """Snapshot of a mediator (no personal data beyond the working name)."""

    event_type = "tiaojie.registry.MediatorUpdated"

    mediator_id: str
    version: int
    name: str
    county: str
    organisation_ids: list[str]
    grade: MediatorGrade | None = None
    status: MediatorStatus = MediatorStatus.ACTIVE
    full_time: bool = False
    specialties: list[Category] = Field(default_factory=list)
    certificate_expires_on: date | None = None


class Candidate(BaseModel):
    """A mediator considered for a case and why."""

    model_config = ConfigDict(frozen=True)

    mediator_id: str
    score: float
    breakdown: dict[str, float] = Field(default_factory=dict)


class MediatorAssigned(EventData):
    """The registry chose a mediator for a case, with the reasons and runners-up."""

    event_type = "tiaojie.registry.MediatorAssigned"

    case_id: str
    county: str
    organisation_id: str
    mediator_id: str
    mediator_name: str
    score: float
    breakdown: dict[str, float] = Field(default_factory=dict)
    runners_up: list[Candidate] = Field(default_factory=list)
    escalated_from: str | None = None
    reason: str = ""
    manual: bool = False
    assigned_at: datetime


class AssignmentFailed(EventData):
    """Nobody eligible anywhere up the hierarchy: the case needs a person to decide."""

    event_type = "tiaojie.registry.AssignmentFailed"

    case_id: str
    county: str
    organisation_id: str | None = None
    tried: list[str] = Field(default_factory=list)  # organisations searched, in order
    reason: str
    failed_at: datetime


__all__ = ["AssignmentFailed", "Candidate", "MediatorAssigned", "MediatorUpdated", "OrganisationUpdated"]
