"""Documents the library stores: entries (anonymised cases under curation) and the
projection of open cases it suggests for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import CaseStatus, Category
from tiaojie.contracts.library import AmountBand, EntryPublished, EntryStatus, Technique

# The free-text fields of an entry: anonymised on the way in, checked before publication.
TEXT_FIELDS = ("title", "summary", "process", "result", "commentary", "follow_up", "note")


class HistoryEntry(BaseModel):
    """One curation step: who did what, when, and which fields changed (never their values)."""

    model_config = ConfigDict(extra="ignore")

    at: datetime
    action: str  # nominate | renominate | edit | publish | decline | withdraw
    by: str
    status: EntryStatus
    note: str = ""
    changed: list[str] = Field(default_factory=list)


class EntryDoc(BaseModel):
    """One typical-case entry: the anonymised case, its tags, its curation history."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    case_id: str
    county: str
    township: str | None = None
    organisation_id: str | None = None
    status: EntryStatus
    category: Category
    techniques: list[Technique] = Field(default_factory=list)
    outcome: CaseStatus
    amount_band: AmountBand = AmountBand.NONE
    year: int
    referral_kind: str | None = None

    title: str
    summary: str
    process: str = ""
    result: str = ""
    commentary: str = ""
    follow_up: str = ""
    note: str = ""

    nominated_by: str
    nominated_at: datetime
    published_at: datetime | None = None
    published_by: str | None = None
    # Keyed hashes of the parties' names: the checker recognises a real name typed back
    # in by an editor without the library keeping any name.
    name_keys: list[str] = Field(default_factory=list)
    anonymised: dict[str, int] = Field(default_factory=dict)  # kinds replaced, with counts
    nominations: list[str] = Field(default_factory=list)  # ids of CaseNominated events seen
    history: list[HistoryEntry] = Field(default_factory=list)
    version: int = 1
    # Terms of the published text (jieba), stored so start-up indexing only reads them.
    summary_terms: str = ""
    record_terms: str = ""

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python")

    def texts(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in TEXT_FIELDS}

    def published_event(self, *, at: datetime, by: str) -> EntryPublished:
        """The whole published case as an event (what every index needs)."""
        return EntryPublished(
            entry_id=self.id,
            version=self.version,
            county=self.county,
            category=self.category,
            status=EntryStatus.PUBLISHED,
            at=at,
            by=by,
            title=self.title,
            summary=self.summary,
            process=self.process,
            result=self.result,
            commentary=self.commentary,
            techniques=self.techniques,
            outcome=self.outcome,
            amount_band=self.amount_band,
            year=self.year,
            township=self.township,
            published_at=self.published_at or at,
        )


class OpenCase(BaseModel):
    """What the library knows of a case still being handled (from intake's events): enough
    to scope a suggestion request and to rank by category. No text, no party."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    county: str
    township: str | None = None
    category: Category
    amount: float | None = None
    status: CaseStatus = CaseStatus.RECEIVED
    updated_at: datetime
