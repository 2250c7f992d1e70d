"""The search index across replicas and from the events: a second replica learns of a
publication made by the first from the library's topic; an index rebuilt from the topic
alone answers as the live one; a restarted replica loads what was published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.library.conftest import Library, new_case_id, nomination, own_settings, people
from tests.support.kafka import eventually
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.library.app import create_app
from tiaojie.library.search import Filters, SearchIndex
from tiaojie.library.service import LibraryService
from tiaojie.library.tail import apply_event, replay
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


async def publish_one(library: Library, seed: str) -> str:
    case_id = new_case_id()
    await library.send(
        topics.LIBRARY_NOMINATIONS, nomination(case_id, people(seed), protector=library.protector())
    )
    entry = await library.entry(case_id)
    done = await library.client.post(
        f"/api/v1/entries/{entry.id}/publish", headers=library.headers(Role.BUREAU)
    )
    assert done.status_code == 200, done.text
    return entry.id


async def test_a_second_replica_follows_publications_and_withdrawals(
    library: Library, settings: RuntimeSettings, unique: str
) -> None:
    before = await publish_one(library, f"{unique}-before")
    app = create_app(await own_settings(settings), clock=ManualClock(datetime(2026, 3, 3, tzinfo=UTC)))
    replica: LibraryService = app.state.library
    async with app.router.lifespan_context(app):
        # Loaded at start-up from the collection...
        assert replica.index.version_of(before) > 0
        # ...and kept current from the topic for what the other replica does afterwards.
        after = await publish_one(library, f"{unique}-after")
        await eventually(lambda: replica.index.version_of(after) > 0, timeout=30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica", timeout=30) as client:
            found = await client.get(
                "/api/v1/search",
                params={"q": "过道 杂物", "limit": 50},
                headers=library.headers(Role.MEDIATOR),
            )
            assert {before, after} <= {h["id"] for h in found.json()["hits"]}
        withdrawn = await library.client.post(
            f"/api/v1/entries/{after}/withdraw", json={"reason": "重复"}, headers=library.headers(Role.BUREAU)
        )
        assert withdrawn.status_code == 200
        gone = withdrawn.json()["version"]
        await eventually(lambda: replica.index.version_of(after) == gone, timeout=30)
        page = replica.index.search("过道 杂物", Filters(), limit=200)
        assert after not in {h.entry_id for h in page.hits} and before in {h.entry_id for h in page.hits}


async def test_an_index_rebuilt_from_the_events_alone_answers_as_the_live_one(
    library: Library, unique: str
) -> None:
    await publish_one(library, f"{unique}-a")
    await publish_one(library, f"{unique}-b")

    async def settled() -> bool:
        # Every revision settled: its events are on the topic.
        return not await library.service.repo.entry_store.unsettled(older_than=timedelta(0))

    await eventually(settled)
    rebuilt = SearchIndex()
    seen = await replay(library.settings, lambda event: apply_event(rebuilt, event))
    assert seen >= 4
    live = library.service.index
    assert rebuilt.size == live.size
    for query in ("过道 杂物 三轮车", "鸡舍", "相邻关系"):
        # The same hits in the same order. Not the same scores: tantivy's BM25 statistics
        # count a replaced document until its segment is merged, so they follow the index's
        # history (the replay applies every revision, the live replica only those it saw).
        mine = [h.entry_id for h in rebuilt.search(query, Filters(), limit=200).hits]
        theirs = [h.entry_id for h in live.search(query, Filters(), limit=200).hits]
        assert mine == theirs, query
