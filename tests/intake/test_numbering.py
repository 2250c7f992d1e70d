"""Case numbers: a sequence per organisation and year without gaps or duplicates, under
concurrent accepts, several replicas, retries and a crash between the steps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from tests.intake.conftest import Intake, body, case_events, organisation, types_of
from tests.support.data import COUNTY
from tiaojie.contracts.common import CaseStatus
from tiaojie.contracts.intake import DisputeSubmission
from tiaojie.intake.repository import IntakeRepository
from tiaojie.runtime.errors import Conflict, IllegalTransition
from tiaojie.runtime.revisions import Change

pytestmark = pytest.mark.integration


async def own_organisation(intake: Intake, unique: str) -> str:
    org_id = f"org-{unique}"
    await intake.service.project_organisation(
        event=organisation(
            org_id, kind="personal_room", level="county", division=COUNTY, short=f"临兰{unique[:2]}"
        )
    )
    return org_id


async def cases_for(intake: Intake, org_id: str, unique: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        result = await intake.service.register(
            submission=DisputeSubmission.model_validate(body(f"{unique}-{i}")),
            registered_by="test",
            organisation_id=org_id,
            category_authority="desk",
        )
        ids.append(result.case.id)
    return ids


def sequence(number: str) -> int:
    return int(number.rsplit("第", 1)[1].rstrip("号"))


async def test_concurrent_accepts_produce_gap_free_numbers(intake: Intake, unique: str) -> None:
    org_id = await own_organisation(intake, unique)
    ids = await cases_for(intake, org_id, unique, 24)
    accepted = await asyncio.gather(
        *(intake.service.accept(case_id=cid, by="desk", action_id=f"a-{cid}") for cid in ids)
    )
    numbers = sorted(sequence(c.case_number or "") for c in accepted)
    assert numbers == list(range(1, 25))
    assert all(
        c.case_number and c.case_number.startswith(f"(2026)临兰{unique[:2]}人调字第") for c in accepted
    )
    assert await intake.service.repo.numbers_of(f"{org_id}:2026") == list(range(1, 25))


async def test_the_same_case_accepted_concurrently_gets_one_number_and_one_event(
    intake: Intake, unique: str
) -> None:
    org_id = await own_organisation(intake, unique)
    (cid,) = await cases_for(intake, org_id, unique, 1)
    outcomes = await asyncio.gather(
        *(intake.service.accept(case_id=cid, by="desk", action_id=f"req-{i}") for i in range(8)),
        return_exceptions=True,
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert accepted and all(isinstance(r, IllegalTransition) for r in refused)
    assert {c.case_number for c in accepted} == {f"(2026)临兰{unique[:2]}人调字第1号"}
    assert await intake.service.repo.numbers_of(f"{org_id}:2026") == [1]
    events = await case_events(intake, cid, at_least=3, timeout=4)
    assert types_of(events) == ["CaseRegistered", "CaseAccepted"]


async def test_two_replicas_claiming_at_once_share_one_gap_free_sequence(intake: Intake, unique: str) -> None:
    """Two repositories on two clients (as two processes would be) claim 2 × 25 numbers."""
    counter = f"org-{unique}:2026"
    clients = [AsyncMongoClient(intake.settings.mongo_url, tz_aware=True) for _ in range(2)]
    try:
        repos = [
            IntakeRepository(c[intake.settings.database(intake.settings.database_name)]) for c in clients
        ]
        at = datetime(2026, 3, 2, tzinfo=UTC)
        claims = await asyncio.gather(
            *(repos[i % 2].claim_number(counter=counter, case_id=f"{unique}-{i}", at=at) for i in range(50)),
            # The same cases claimed again by the other replica (a redelivery): same numbers.
            *(
                repos[(i + 1) % 2].claim_number(counter=counter, case_id=f"{unique}-{i}", at=at)
                for i in range(50)
            ),
        )
    finally:
        for c in clients:
            await c.close()
    first, second = claims[:50], claims[50:]
    assert sorted(first) == list(range(1, 51)) and first == second
    assert await intake.service.repo.numbers_of(counter) == list(range(1, 51))


async def test_a_crash_between_claim_and_acceptance_loses_no_number(intake: Intake, unique: str) -> None:
    org_id = await own_organisation(intake, unique)
    crashed, later = await cases_for(intake, org_id, unique, 2)
    repo = intake.service.repo
    case = await repo.get_case(crashed)
    assert case is not None
    # What accept() does before a crash: the intent is written and the number claimed...
    now = intake.clock.now()
    intent = {
        "at": now,
        "by": "desk",
        "action_id": "lost",
        "organisation_id": org_id,
        "short_name": f"临兰{unique[:2]}",
        "year": 2026,
        "counter": f"{org_id}:2026",
    }
    snapshot = case.model_copy(
        update={"accept_pending": True, "acceptance_intent": intent, "version": case.version + 1}
    )
    written = await repo.store.apply(crashed, lambda state: Change(snapshot.to_mongo()))
    assert written.fresh
    assert await repo.claim_number(counter=f"{org_id}:2026", case_id=crashed, at=now) == 1
    # ...and then the process dies. The next case must not skip or take number 1; the
    # reconciler (every replica runs it) finishes the lost acceptance with its number.
    with pytest.raises(Conflict):  # "being accepted" (or accepted, once the reconciler ran)
        await intake.service.reject(case_id=crashed, by="desk", action_id="r", reason_code="other")
    second = await intake.service.accept(case_id=later, by="desk", action_id=f"a-{later}")
    assert second.case_number and sequence(second.case_number) == 2
    await intake.service.reconcile(grace=timedelta(0))
    finished = await repo.get_case(crashed)
    assert finished is not None and finished.status == CaseStatus.ACCEPTED and finished.case_number
    assert sequence(finished.case_number) == 1
    assert await repo.numbers_of(f"{org_id}:2026") == [1, 2]
    events = await case_events(intake, crashed, at_least=2)
    assert (
        types_of(events) == ["CaseRegistered", "CaseAccepted"]
        and events[1].data["case_number"] == finished.case_number
    )
