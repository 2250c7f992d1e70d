"""Documents intake stores: cases (with their parties protected) and organisation projections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import CaseStatus, Category, Channel, RiskLevel


class StoredParty(BaseModel):
    """A party at rest: name and numbers encrypted, numbers also as keyed hashes."""

    model_config = ConfigDict(extra="ignore")

    role: str  # applicant | respondent
    kind: str = "person"
    name_enc: str
    id_number_enc: str | None = None
    id_number_key: str | None = None
    phone_enc: str | None = None
    phone_key: str | None = None
    vulnerable: bool = False


class Assignment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mediator_id: str
    mediator_name: str
    organisation_id: str
    assigned_at: datetime
    reason: str = ""
    escalated_from: str | None = None


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: datetime
    action: str
    by: str
    status: CaseStatus
    note: str = ""


class CaseDoc(BaseModel):
    """One case, one document (一案一卷): state, parties, history and pending events."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    tracking_code: str
    status: CaseStatus
    channel: Channel
    county: str
    township: str | None = None
    category: Category
    category_confidence: float = 1.0
    risk_level: RiskLevel = RiskLevel.ORDINARY
    risk_signals: list[str] = Field(default_factory=list)
    description: str
    amount: float | None = None
    parties: list[StoredParty]
    organisation_id: str | None = None
    assignment: Assignment | None = None
    received_at: datetime
    acceptance_due: datetime | None = None
    registered_by: str
    request_hash: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    version: int = 1

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python")


class OrganisationView(BaseModel):
    """Intake's projection of a registry organisation (for routing and display)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    version: int
    name: str
    short_name: str
    kind: str
    level: str
    county: str
    division_code: str
    parent_id: str | None = None
    categories: list[str] = Field(default_factory=list)
    active: bool = True
