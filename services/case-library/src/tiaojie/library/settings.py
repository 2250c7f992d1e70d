"""Case-library settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tiaojie.runtime.settings import ServiceSettings


class LibrarySettings(ServiceSettings):
    # Tokens must name this service (`aud`); not a setting, so no test or deployment can widen it.
    audience: ClassVar[str | None] = "library"
    service_name: str = "library"
    port: int = 8005
    database_name: str = "tiaojie_library"
    suggestions: int = Field(default=5, ge=1, le=20, description="similar cases shown for an open case")
    search_max_limit: int = Field(default=50, ge=1, le=200)
    curation_list_limit: int = Field(default=200, ge=1, le=2000)
    # Memory tantivy's writer may use before it flushes a segment (start-up load).
    index_writer_heap_bytes: int = Field(default=50_000_000, ge=15_000_000)
    # How long the index tail waits for new events per poll (milliseconds).
    tail_poll_ms: int = Field(default=500, ge=10)
