"""The public event contract of Tiaojie: envelope, event payloads and topic names.

Agencies and every service code against this package (and the AsyncAPI document
generated from it). Changes are additive; a breaking change is a new `.v2` topic.
"""

# Importing the event modules registers every payload type in EVENT_TYPES.
from tiaojie.contracts import intake, referral, registry, stats
from tiaojie.contracts.envelope import (
    EVENT_TYPES,
    CloudEvent,
    EventData,
    decode_event,
    derived_id,
    new_event,
)

__all__ = [
    "EVENT_TYPES",
    "CloudEvent",
    "EventData",
    "decode_event",
    "derived_id",
    "intake",
    "new_event",
    "referral",
    "registry",
    "stats",
]
