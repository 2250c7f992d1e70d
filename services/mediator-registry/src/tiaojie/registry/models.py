"""Documents the registry stores: organisations, mediators (identity protected), assignments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import (
    Category,
    DivisionLevel,
    MediatorGrade,
    MediatorStatus,
    OrganisationKind,
)


class OrganisationIn(BaseModel):
    """An organisation as filed by a justice bureau."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=2, max_length=100)
    short_name: str = Field(min_length=1, max_length=20)
    kind: OrganisationKind
    level: DivisionLevel
    county: str = Field(pattern=r"^\d{6}$")
    division_code: str = Field(pattern=r"^\d{6}(\d{3})?(\d{3})?$")
    parent_id: str | None = None
    categories: list[Category] = Field(default_factory=list)
    filed: bool = True
    filed_on: date | None = None
    active: bool = True


class OrganisationDoc(OrganisationIn):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    version: int = 1


class MediatorIn(BaseModel):
    """A mediator as registered (the ID number is personal data: stored encrypted)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=1, max_length=50)
    id_number: str | None = Field(default=None, max_length=32)
    county: str = Field(pattern=r"^\d{6}$")
    organisation_ids: list[str] = Field(min_length=1)
    full_time: bool = False
    grade: MediatorGrade | None = None
    status: MediatorStatus = MediatorStatus.ACTIVE
    specialties: list[Category] = Field(default_factory=list)
    certificate_number: str | None = Field(default=None, max_length=50)
    certificate_expires_on: date | None = None
    capacity: int | None = Field(default=None, ge=0, le=500)


class MediatorDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    version: int = 1
    name: str
    id_number_enc: str | None = None
    id_number_key: str | None = None
    county: str
    organisation_ids: list[str]
    full_time: bool = False
    grade: MediatorGrade | None = None
    status: MediatorStatus = MediatorStatus.ACTIVE
    specialties: list[Category] = Field(default_factory=list)
    certificate_number: str | None = None
    certificate_expires_on: date | None = None
    capacity: int | None = None
    active_cases: list[str] = Field(default_factory=list)
    assigned_total: int = 0

    def to_mongo(self) -> dict[str, Any]:
        data = self.model_dump(by_alias=True, mode="json")
        return data


class AssignmentDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")  # the case id
    county: str
    organisation_id: str
    mediator_id: str
    score: float
    assigned_at: datetime
