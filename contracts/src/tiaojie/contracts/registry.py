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
    # Added by issue 4 (optional, so older consumers and producers still agree).
    stationed_at: str | None = None  # court | police | petition, for a stationed room
    brand_name: str | None = None  # for a personal branded room (个人调解室)


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
    # Added by issue 4. Eligibility itself is never published (it depends on the day):
    # consumers compute it from status, suspended_until and certificate_expires_on.
    government_purchased: bool = False
    backgrounds: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    suspended_until: date | None = None  # end of a disciplinary suspension in force or ahead
    capacity: int | None = None


class Candidate(BaseModel):
    """A mediator considered for a case and why."""

    model_config = ConfigDict(frozen=True)

    mediator_id: str
    score: float
    breakdown: dict[str, float] = Field(default_factory=dict)


class Exclusion(BaseModel):
    """A mediator of a searched organisation who could not take the case, and why
    (reason codes: suspended, revoked, uncertified, certificate_expired, conflict_of_interest,
    grade_below_required, at_capacity)."""

    model_config = ConfigDict(frozen=True)

    mediator_id: str
    organisation_id: str
    reasons: list[str]


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
    # Added by issue 4.
    trigger: str = "registered"  # registered | transfer | manual | risk_raised
    assigned_by: str = "system:registry"  # the centre user's id for a manual reassignment
    previous_mediator_id: str | None = None
    tried: list[str] = Field(default_factory=list)  # organisations searched, in order
    excluded: list[Exclusion] = Field(default_factory=list)
    transfer_id: str | None = None


class AssignmentFailed(EventData):
    """Nobody eligible anywhere up the hierarchy: the case needs a person to decide."""

    event_type = "tiaojie.registry.AssignmentFailed"

    case_id: str
    county: str
    organisation_id: str | None = None
    tried: list[str] = Field(default_factory=list)  # organisations searched, in order
    reason: str
    failed_at: datetime
    # Added by issue 4.
    trigger: str = "registered"  # registered | transfer
    excluded: list[Exclusion] = Field(default_factory=list)
    transfer_id: str | None = None


__all__ = [
    "AssignmentFailed",
    "Candidate",
    "Exclusion",
    "MediatorAssigned",
    "MediatorUpdated",
    "OrganisationUpdated",
]
