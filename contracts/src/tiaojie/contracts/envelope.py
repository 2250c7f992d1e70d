"""CloudEvents 1.0 (structured JSON mode) envelope shared by every Tiaojie event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SPEC_VERSION: Literal["1.0"] = "1.0"
CONTENT_TYPE = "application/cloudevents+json"

# Fixed namespace so that ids derived from the same input are the same on every replica.
_DERIVED_NS = uuid.UUID("6f1d3c2e-5a4b-4e8f-9c7d-2b1a0e9f8d7c")

EVENT_TYPES: dict[str, type[EventData]] = {}


class EventData(BaseModel):
    """Base of every event payload: immutable, tolerant of fields added later."""

    # Consumers ignore unknown fields so that producers can add fields (additive changes).
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.event_type:
            if cls.event_type in EVENT_TYPES and EVENT_TYPES[cls.event_type] is not cls:
                raise TypeError(f"event type {cls.event_type} defined twice")
            EVENT_TYPES[cls.event_type] = cls


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope with Tiaojie's extension attributes (county, schemaversion)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    subject: str | None = Field(default=None, max_length=200)
    time: datetime
    datacontenttype: str = "application/json"
    county: str | None = Field(default=None, pattern=r"^\d{6}$")
    schemaversion: int = 1
    data: dict[str, Any]

    def payload(self) -> EventData:
        """Parse `data` into the registered payload model of this event's type."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        return model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        """Serialise as CloudEvents structured-mode JSON."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


class UnknownEventType(ValueError):
    """The envelope names a type no model is registered for."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


def new_event(
    data: EventData,
    *,
    source: str,
    subject: str | None,
    county: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a payload in an envelope; pass `id` for derived events (see derived_id)."""
    if not data.event_type:
        raise TypeError(f"{type(data).__name__} has no event_type")
    return CloudEvent(
        id=id or str(uuid.uuid4()),
        source=source,
        type=data.event_type,
        subject=subject,
        time=time or datetime.now(UTC),
        county=county,
        schemaversion=data.schema_version,
        data=data.model_dump(mode="json"),
    )


def decode_event(raw: bytes | str) -> CloudEvent:
    """Parse structured-mode JSON into an envelope; raises ValueError/ValidationError."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError("a CloudEvent must be a JSON object")
    return CloudEvent.model_validate(doc)


def derived_id(input_id: str, handler: str) -> str:
    """Deterministic id of an event derived from an input event by a handler."""
    return str(uuid.uuid5(_DERIVED_NS, f"{input_id}/{handler}"))


__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPES",
    "SPEC_VERSION",
    "CloudEvent",
    "EventData",
    "UnknownEventType",
    "ValidationError",
    "decode_event",
    "derived_id",
    "new_event",
]
