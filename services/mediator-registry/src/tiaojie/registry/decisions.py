"""What a decision is, apart from taking it: the triggers that ask for one (a registration,
a transfer), the plan a case keeps while its mediator's place is reserved, and the record
and event a concluded decision leaves. Pure: no database, no broker."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tiaojie.contracts import topics
from tiaojie.contracts.common import Category, RiskLevel
from tiaojie.contracts.envelope import CloudEvent, EventData, derived_id, new_event
from tiaojie.contracts.intake import CaseRegistered, CaseTransferred
from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned
from tiaojie.registry import cases
from tiaojie.registry.matching import CaseNeeds
from tiaojie.registry.models import MediatorDoc
from tiaojie.runtime.mongo import Document

SOURCE = topics.service_source("registry")
SYSTEM = "system:registry"


@dataclass(frozen=True)
class Failed:
    """Nobody can take the case: the event to publish and the organisation it stays with."""

    payload: AssignmentFailed
    organisation_id: str | None


@dataclass(frozen=True)
class Trigger:
    """An automatic decision to take: its id (derived from the event that asks for it),
    where to search, and what the case needs (what the event does not say, the case's
    state does). `facts` are recorded on the case with the plan or the failure."""

    case_id: str
    decision_id: str
    county: str
    organisation_id: str | None
    trigger: str  # registered | transfer | risk_raised
    facts: Document
    category: Category | None = None
    risk_level: str | None = None
    party_keys: tuple[str, ...] | None = None
    transfer_id: str | None = None

    def needs(self, state: Document | None) -> CaseNeeds:
        known = state or {}
        category = self.category or known.get("category") or Category.OTHER
        keys = self.party_keys if self.party_keys is not None else known.get("party_keys") or ()
        return CaseNeeds(
            case_id=self.case_id,
            category=Category(category),
            risk_level=str(self.risk_level or known.get("risk_level") or RiskLevel.ORDINARY),
            party_keys=frozenset(keys),
        )


def registered(event: CloudEvent, case: CaseRegistered) -> Trigger:
    """A registered case is assigned in its routed organisation (or up the hierarchy)."""
    return Trigger(
        case_id=case.case_id,
        decision_id=derived_id(event.id, "assign"),
        county=case.county,
        organisation_id=case.organisation_id,
        trigger="registered",
        facts={
            "county": case.county,
            "category": str(case.category),
            "risk_level": str(case.risk_level),
            "party_keys": case.party_keys,
        },
        category=case.category,
        risk_level=str(case.risk_level),
        party_keys=tuple(case.party_keys),
    )


def transferred(event: CloudEvent, moved: CaseTransferred) -> Trigger:
    """A case intake moved after an accepted transfer: the move (the holder released) is
    recorded with the plan in the receiving organisation, in one revision."""
    assert moved.organisation_id is not None
    facts: Document = {
        "county": moved.county,
        "organisation_id": moved.organisation_id,
        "transferred_at": moved.at,
        "holder": None,
        "token": None,
        "mediator_id": None,
    }
    if moved.category is not None:
        facts["category"] = str(moved.category)
    return Trigger(
        case_id=moved.case_id,
        decision_id=derived_id(event.id, "transfer"),
        county=moved.county,
        organisation_id=moved.organisation_id,
        trigger="transfer",
        facts=facts,
        category=moved.category,
        transfer_id=moved.transfer_id,
    )


# Plans a decision on the case's state (its known facts), or says why nobody can take it.
Planner = Callable[[Document | None], Awaitable["Document | Failed"]]


def pending_plan(
    *,
    decision_id: str,
    mediator: MediatorDoc,
    payload: MediatorAssigned,
    outcome: str,
    by: str,
    capacity: int | None,
    load: float,
    at: datetime,
) -> Document:
    """A pending decision as the case keeps it: who, the reservation's token, the limit to
    reserve under (None: overridden), and the event but for the previous mediator."""
    return {
        "decision_id": decision_id,
        "token": uuid.uuid4().hex,
        "mediator_id": mediator.id,
        "organisation_id": payload.organisation_id,
        "county": payload.county,
        "trigger": payload.trigger,
        "outcome": outcome,
        "by": by,
        "capacity": capacity,
        "load": load,
        "at": at,
        "payload": payload.model_dump(mode="json", exclude={"previous_mediator_id"}),
    }


def decision_doc(
    state: Document, *, decision_id: str, payload: EventData, fields: Document, at: datetime
) -> tuple[Document, tuple[str, CloudEvent]]:
    """A decision's record (numbered after the case's last) and its event."""
    county = fields["county"]
    event = new_event(
        payload, source=SOURCE, subject=str(state["_id"]), county=county, id=decision_id, time=at
    )
    doc = {
        "_id": decision_id,
        "case_id": state["_id"],
        "seq": int(state.get("seq", 0)) + 1,
        "previous_mediator_id": state.get("mediator_id"),
        "at": at,
        "event": payload.model_dump(mode="json"),
        **fields,
    }
    return doc, (topics.ASSIGNMENTS, event)


def assigned_record(state: Document, plan: Document | None) -> tuple[Document, tuple[str, CloudEvent]]:
    """The record and event of a planned assignment, decided on the case's state."""
    assert plan is not None
    payload = MediatorAssigned.model_validate(
        {**plan["payload"], "previous_mediator_id": state.get("mediator_id")}
    )
    fields = {
        "county": plan["county"],
        "trigger": plan["trigger"],
        "outcome": plan["outcome"],
        "mediator_id": plan["mediator_id"],
        "organisation_id": plan["organisation_id"],
        "by": plan["by"],
    }
    return decision_doc(state, decision_id=plan["decision_id"], payload=payload, fields=fields, at=plan["at"])


def failure_record(decision_id: str, payload: AssignmentFailed) -> cases.Record:
    def record(state: Document, plan: Document | None) -> tuple[Document, tuple[str, CloudEvent]]:
        fields = {
            "county": payload.county,
            "trigger": payload.trigger,
            "outcome": "failed",
            "mediator_id": None,
            "organisation_id": payload.organisation_id,
            "by": SYSTEM,
        }
        return decision_doc(
            state, decision_id=decision_id, payload=payload, fields=fields, at=payload.failed_at
        )

    return record
