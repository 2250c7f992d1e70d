"""The library's writes on the storage engine, against the real FerretDB and Kafka: racing
curators get exactly one winner per version (a client's stale version is a 409), steps
without a version are all kept, an outbox written before the engine is published, and
open cases follow their events whatever the order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.library.conftest import Library, new_case_id
from tests.library.test_curation import library_events, nominate
from tests.support.data import COUNTY, TOWNSHIP
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel, Role
from tiaojie.contracts.envelope import derived_id, new_event
from tiaojie.contracts.intake import CaseAccepted, CaseEvent, CaseRegistered
from tiaojie.contracts.library import EntryDeclined, EntryStatus
from tiaojie.runtime.mongo import outbox_fields

pytestmark = pytest.mark.integration


async def test_racing_edits_of_one_version_have_one_winner(library: Library, unique: str) -> None:
    _, entry_id, _ = await nominate(library, unique)
    bureau = library.headers(Role.BUREAU)
    answers = await asyncio.gather(
        *(
            library.client.patch(
                f"/api/v1/entries/{entry_id}",
                json={"version": 1, "title": f"过道纠纷案之{n}"},
                headers=bureau,
            )
            for n in range(5)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    assert {a.json()["current_version"] for a in answers if a.status_code == 409} == {2}
    entry = await library.service.repo.get_entry(entry_id)
    assert entry is not None and entry.version == 2
    assert [h.action for h in entry.history] == ["nominate", "edit"]


async def test_racing_edits_without_a_version_are_all_kept(library: Library, unique: str) -> None:
    _, entry_id, _ = await nominate(library, unique)
    bureau = library.headers(Role.BUREAU)
    fields = ["title", "commentary", "title", "commentary", "title"]
    answers = await asyncio.gather(
        *(
            library.client.patch(
                f"/api/v1/entries/{entry_id}", json={name: f"调解员现场查看第{n}稿"}, headers=bureau
            )
            for n, name in enumerate(fields)
        )
    )
    assert [a.status_code for a in answers] == [200] * len(fields)
    entry = await library.service.repo.get_entry(entry_id)
    assert entry is not None and entry.version == 1 + len(fields)
    assert [h.action for h in entry.history] == ["nominate", *["edit"] * len(fields)]


async def test_racing_publications_publish_once(library: Library, unique: str) -> None:
    _, entry_id, _ = await nominate(library, unique)
    bureau = library.headers(Role.BUREAU)
    answers = await asyncio.gather(
        *(library.client.post(f"/api/v1/entries/{entry_id}/publish", headers=bureau) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"illegal_transition"}
    assert await library_events(library, entry_id, at_least=2) == ["EntryNominated", "EntryPublished"]


async def test_an_outbox_written_before_the_engine_is_published(library: Library, unique: str) -> None:
    _, entry_id, _ = await nominate(library, unique)
    before = await library.service.repo.get_entry(entry_id)
    assert before is not None
    # As the library wrote an entry before the engine and crashed before publishing it.
    at = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    left = new_event(
        EntryDeclined(
            entry_id=entry_id,
            version=before.version,
            county=before.county,
            category=before.category,
            status=EntryStatus.DECLINED,
            at=at,
            by="bureau-before",
            reason="旧版本留下的事件",
        ),
        source=topics.service_source("library"),
        subject=entry_id,
        county=before.county,
        id=derived_id(entry_id, f"legacy-{unique}"),
        time=at,
    )
    await library.service.repo.entries.update_one(
        {"_id": entry_id}, {"$set": outbox_fields([(topics.LIBRARY, left)])}
    )
    assert await library.service.adopt_legacy_outboxes() == 1
    assert await library.service.adopt_legacy_outboxes() == 0
    raw = await library.service.repo.get_entry_raw(entry_id)
    assert raw is not None and "outbox" not in raw and "outbox_pending" not in raw
    assert raw["version"] == before.version + 1
    assert await library_events(library, entry_id, at_least=2) == ["EntryNominated", "EntryDeclined"]


async def test_open_cases_follow_their_latest_event_whatever_the_order(library: Library) -> None:
    case_id = new_case_id()
    service = library.service
    received = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    registration = CaseRegistered(
        case_id=case_id,
        channel=Channel.DESK,
        county=COUNTY,
        township=TOWNSHIP,
        category=Category.LABOUR,
        amount=5000,
        received_at=received,
    )
    accepted_at = received + timedelta(hours=2)
    accepted = CaseAccepted(
        case_id=case_id,
        county=COUNTY,
        status=CaseStatus.ACCEPTED,
        at=accepted_at,
        case_number="(2026)临兰人调字第9号",
        mediation_due=received + timedelta(days=30),
        category=Category.LABOUR,
    )
    # The acceptance arrives first, then the registration, each delivered several times at
    # once (three replicas, each handling its batch).
    await asyncio.gather(*(service.project_cases(events=[(accepted, accepted_at)]) for _ in range(3)))
    await asyncio.gather(*(service.project_cases(events=[(registration, received)]) for _ in range(3)))
    case = await service.repo.get_open_case(case_id)
    assert case is not None and case.status == CaseStatus.ACCEPTED and case.category == Category.LABOUR
    # The earlier registration only filled what the acceptance did not say.
    assert case.updated_at == accepted_at and case.township == TOWNSHIP and case.amount == 5000
    raw = await service.repo.open_cases.find_one({"_id": case_id})
    assert raw is not None and raw["version"] == 2  # one revision per event that changed something


async def test_an_open_case_projected_before_the_engine_is_continued(library: Library) -> None:
    case_id = new_case_id()
    service = library.service
    received = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    # As the library stored open cases before: no version field.
    await service.repo.open_cases.insert_one(
        {"_id": case_id, "county": COUNTY, "category": "labour", "status": "received", "updated_at": received}
    )
    accepted_at = received + timedelta(hours=1)
    accepted = CaseAccepted(
        case_id=case_id,
        county=COUNTY,
        status=CaseStatus.ACCEPTED,
        at=accepted_at,
        case_number="(2026)临兰人调字第10号",
        mediation_due=received + timedelta(days=30),
    )
    await service.project_cases(events=[(accepted, accepted_at)])
    case = await service.repo.get_open_case(case_id)
    assert case is not None and case.status == CaseStatus.ACCEPTED and case.updated_at == accepted_at


async def test_one_batch_of_several_cases_is_folded_per_case_in_one_round(library: Library) -> None:
    service = library.service
    received = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    first, second, never = new_case_id(), new_case_id(), new_case_id()

    def registered(case_id: str) -> CaseRegistered:
        return CaseRegistered(
            case_id=case_id,
            channel=Channel.DESK,
            county=COUNTY,
            township=TOWNSHIP,
            category=Category.NEIGHBOURHOOD,
            received_at=received,
        )

    def accepted(case_id: str, at: datetime, category: Category | None) -> CaseAccepted:
        return CaseAccepted(
            case_id=case_id,
            county=COUNTY,
            status=CaseStatus.ACCEPTED,
            at=at,
            case_number="(2026)临兰人调字第11号",
            mediation_due=received + timedelta(days=30),
            category=category,
        )

    later = received + timedelta(hours=3)
    batch: list[tuple[CaseRegistered | CaseEvent, datetime]] = [
        (registered(first), received),
        (accepted(second, later, Category.LABOUR), later),
        (accepted(first, later, None), later),
        (registered(second), received),  # arrives after its acceptance: fills gaps only
        (registered(first), received),  # a redelivery inside the batch
        (accepted(never, later, None), later),  # no category, no registration: nothing to rank by
    ]
    await service.project_cases(events=batch)
    await service.project_cases(events=batch)  # the whole batch again: nothing changes
    one, two = await service.repo.get_open_case(first), await service.repo.get_open_case(second)
    assert one is not None and one.status == CaseStatus.ACCEPTED and one.category == Category.NEIGHBOURHOOD
    assert two is not None and two.status == CaseStatus.ACCEPTED and two.category == Category.LABOUR
    assert two.township == TOWNSHIP and two.updated_at == later
    assert await service.repo.get_open_case(never) is None
    for case_id in (first, second):
        raw = await service.repo.open_cases.find_one({"_id": case_id})
        assert raw is not None and raw["version"] == 1  # one revision for the batch's events
