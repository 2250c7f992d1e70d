"""Documents stats stores: one projection document per case."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CaseFacts(BaseModel):
    """What stats knows of a case, built from intake's and the registry's events."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    county: str | None = None
    township: str | None = None
    channel: str | None = None
    category: str | None = None
    received_at: datetime | None = None
    assigned_at: datetime | None = None
