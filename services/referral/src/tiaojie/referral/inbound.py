"""What agencies publish on agency.<agency-id>.referrals.v1, checked before it becomes a
referral: the topic must belong to a registered agency, the event must be a CloudEvent
from that agency's own source, and its payload must be a valid referral. Anything else
goes to the topic's DLQ with its reason, and the agency is told on its outcomes topic
(AgencyReferralRejected) whenever the topic identifies it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import decode_event, derived_id, new_event
from tiaojie.contracts.referral import AGENCY_REF_PATTERN, AgencyReferralRejected, AgencyReferralSubmitted
from tiaojie.referral.models import AgencyDoc
from tiaojie.referral.repository import ReferralRepository
from tiaojie.referral.service import ReferralService
from tiaojie.referral.subjects import SOURCE
from tiaojie.runtime.consumer import DeadLetter
from tiaojie.runtime.errors import FieldError, Invalid, field_errors
from tiaojie.runtime.mongo import OUTBOX, OutboxRelay, outbox_fields
from tiaojie.runtime.settings import RuntimeSettings

_AGENCY_TOPIC = re.compile(r"agency\.([a-z0-9][a-z0-9-]{1,62})\.referrals\.v1")

TopicMaker = Callable[[list[str]], Awaitable[None]]


def inbound_pattern(settings: RuntimeSettings) -> str:
    """The regex of every agency inbound topic of this deployment (not their DLQs)."""
    return "^" + re.escape(settings.topic("agency.")) + r"[a-z0-9][a-z0-9-]+\.referrals\.v1$"


def describe(errors: list[FieldError]) -> str:
    return "; ".join(f"{e.field}: {e.en} / {e.zh}" for e in errors)


class AgencyInbound:
    """Turns records of agency topics into referrals, or into reasons (DLQ + rejection)."""

    def __init__(
        self,
        *,
        service: ReferralService,
        repository: ReferralRepository,
        relay: OutboxRelay,
        settings: RuntimeSettings,
        make_topics: TopicMaker,
    ) -> None:
        self.service = service
        self.repo = repository
        self.relay = relay
        self.settings = settings
        self.make_topics = make_topics
        self._dlqs: set[str] = set()

    def agency_of(self, physical_topic: str) -> str | None:
        prefix = self.settings.topic("")
        if not physical_topic.startswith(prefix):
            return None
        found = _AGENCY_TOPIC.fullmatch(physical_topic[len(prefix) :])
        return found.group(1) if found else None

    async def handle(self, *, topic: str, value: bytes, partition: int, offset: int) -> None:
        """One record of an agency topic (raises DeadLetter with the reason when refused)."""
        agency_id = self.agency_of(topic)
        agency = await self.repo.get_agency(agency_id) if agency_id else None
        if agency is None or not agency.active:
            # Nobody to answer: no outcomes topic exists for an unknown agency.
            await self._ensure_dlq(topic)
            raise DeadLetter("unknown_agency", detail="the topic belongs to no registered, active agency")
        position = f"{topic}/{partition}/{offset}"
        try:
            event = decode_event(value)
        except (ValueError, ValidationError) as exc:
            detail = describe(field_errors(exc)) if isinstance(exc, ValidationError) else str(exc)[:200]
            await self._reject(agency, position, "malformed_envelope", detail, event_id=None, ref=None)
            raise DeadLetter("malformed_envelope", detail=detail) from None
        raw_ref = event.data.get("agency_ref")
        ref = raw_ref if isinstance(raw_ref, str) and re.match(AGENCY_REF_PATTERN, raw_ref) else None
        if event.source != agency.source:
            detail = "the event's source is not the source registered for this agency's topic"
            await self._reject(agency, position, "source_mismatch", detail, event_id=event.id, ref=ref)
            raise DeadLetter("source_mismatch", detail=detail)
        if event.type != AgencyReferralSubmitted.event_type:
            detail = f"this topic accepts only {AgencyReferralSubmitted.event_type}"
            await self._reject(agency, position, "unknown_type", detail, event_id=event.id, ref=ref)
            raise DeadLetter("unknown_type", detail=detail)
        try:
            data = AgencyReferralSubmitted.model_validate(event.data)
            await self.service.receive(agency=agency, data=data, event_id=event.id)
        except ValidationError as exc:
            detail = describe(field_errors(exc))
            await self._reject(agency, position, "invalid_payload", detail, event_id=event.id, ref=ref)
            raise DeadLetter("invalid_payload", detail=detail) from None
        except Invalid as exc:
            detail = describe(exc.errors)
            await self._reject(agency, position, "invalid_payload", detail, event_id=event.id, ref=ref)
            raise DeadLetter("invalid_payload", detail=detail) from None

    async def _reject(
        self,
        agency: AgencyDoc,
        position: str,
        reason: str,
        detail: str,
        *,
        event_id: str | None,
        ref: str | None,
    ) -> None:
        """Tell the agency, once per refused record (a stable id, kept with its outbox)."""
        now = self.service.clock.now()
        notice = AgencyReferralRejected(
            agency_id=agency.id,
            agency_ref=ref,
            status="rejected",
            at=now,
            reason=reason,
            detail=detail,
            event_id=event_id,
        )
        event = new_event(
            notice,
            source=SOURCE,
            subject=ref or event_id or position,
            county=agency.county,
            id=derived_id(position, "reject"),
            time=now,
        )
        doc: dict[str, Any] = {
            "_id": event.id,
            "agency_id": agency.id,
            "reason": reason,
            "at": now,
            **outbox_fields([(topics.agency_outcomes(agency.id), event)]),
        }
        if await self.repo.insert_rejection(doc):
            self.service.metrics.referrals.labels(str(agency.kind), agency.county, "rejected").inc()
            await self.relay.flush(self.repo.rejections, event.id, doc[OUTBOX], rev=1)
        else:
            # A redelivered record: publish what a crash may have left unpublished.
            outbox = await self.repo.rejection_outbox(event.id)
            if outbox:
                await self.relay.flush(self.repo.rejections, event.id, outbox)

    async def _ensure_dlq(self, topic: str) -> None:
        dead = topics.dlq(topic)
        if dead not in self._dlqs:
            await self.make_topics([dead])
            self._dlqs.add(dead)
