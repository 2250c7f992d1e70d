"""The library on the real Kafka and FerretDB: nominations arrive as intake's events and
are stored anonymised (once, however often delivered); curation rights; the publication
check; history; search, suggestions and export through HTTP."""

from __future__ import annotations

import io
import re

import docx
import pytest

from tests.library.conftest import Library, new_case_id, nomination, people, registered
from tests.support.data import COUNTY, OTHER_COUNTY
from tests.support.kafka import eventually, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.contracts.envelope import decode_event
from tiaojie.contracts.library import EntryStatus
from tiaojie.library.service import entry_id_for

pytestmark = pytest.mark.integration


async def nominate(library: Library, seed: str) -> tuple[str, str, object]:
    case_id, p = new_case_id(), people(seed)
    event = nomination(case_id, p, protector=library.protector())
    await library.send(topics.LIBRARY_NOMINATIONS, event)
    entry = await library.entry(case_id)
    return case_id, entry.id, p


async def library_events(library: Library, entry_id: str, *, at_least: int, timeout: float = 15) -> list[str]:
    """The entry's events on the library's topic (each once, by id), once at least
    `at_least` are there, after one more short read so that a duplicate would show."""

    async def read() -> list[str]:
        records = await read_all(
            library.settings.kafka_bootstrap,
            library.settings.topic(topics.LIBRARY),
            expect=10_000,
            timeout=1.5,
        )
        seen: dict[str, str] = {}
        for r in records:
            if r.key == entry_id.encode():
                event = decode_event(r.value)
                seen[event.id] = event.type.rsplit(".", 1)[1]
        return list(seen.values())

    async def enough() -> list[str] | None:
        found = await read()
        return found if len(found) >= at_least else None

    try:
        await eventually(enough, timeout=timeout, interval=0.1)
    except AssertionError:
        pass  # fewer than expected: the caller's assertion says what is missing
    return await read()


async def test_a_nomination_is_stored_anonymised_once_however_often_delivered(
    library: Library, unique: str
) -> None:
    case_id, p = new_case_id(), people(unique)
    event = nomination(case_id, p, protector=library.protector())
    await library.send(topics.LIBRARY_NOMINATIONS, event)
    await library.send(topics.LIBRARY_NOMINATIONS, event)  # redelivered
    entry = await library.entry(case_id)
    stored = str(await library.service.repo.get_entry_raw(entry.id))
    for secret in (p.applicant, p.respondent, p.id_number[-8:], p.phone[-4:] + "”", "西关村", "12号"):
        assert secret not in stored
    assert entry.status == EntryStatus.NOMINATED and entry.county == COUNTY
    assert "过道" in entry.summary and re.search(r"[\u4e00-\u9fa5]某", entry.summary)
    assert entry.process.startswith("第1次调解（2026年1月")
    assert {"on_site", "face_to_face"} <= {str(t) for t in entry.techniques}
    assert entry.anonymised["id_number"] == 1 and entry.anonymised["mobile"] == 1
    # The second delivery changed nothing.
    await eventually(lambda: _events_settled(library, entry.id))
    again = await library.service.repo.get_entry(entry.id)
    assert again is not None and len(again.history) == 1 and again.version == 1
    assert await library_events(library, entry.id, at_least=1) == ["EntryNominated"]


async def _events_settled(library: Library, entry_id: str) -> bool:
    raw = await library.service.repo.get_entry_raw(entry_id)
    return bool(raw) and await library.service.repo.entry_store.published(entry_id, raw["version"])


async def test_content_the_library_cannot_decrypt_is_dead_lettered(library: Library) -> None:
    case_id, p = new_case_id(), people("undecryptable")
    event = nomination(case_id, p, protector=library.protector())
    broken = event.model_copy(update={"data": {**event.data, "content_enc": "bm90IGVuY3J5cHRlZA=="}})
    await library.send(topics.LIBRARY_NOMINATIONS, broken)
    dead = await read_all(
        library.settings.kafka_bootstrap,
        library.settings.topic(topics.dlq(topics.LIBRARY_NOMINATIONS)),
        expect=1,
    )
    assert any(dict(r.headers)["x-tiaojie-reason"] == b"undecryptable_content" for r in dead)
    assert await library.service.repo.get_entry(entry_id_for(case_id)) is None


async def test_only_the_bureau_of_the_county_publishes(library: Library, unique: str) -> None:
    _, entry_id, _ = await nominate(library, unique)
    url = f"/api/v1/entries/{entry_id}/publish"
    for role in (Role.MEDIATOR, Role.CENTER, Role.DESK, Role.ADMIN):
        refused = await library.client.post(url, headers=library.headers(role))
        assert refused.status_code == 403, role
        assert refused.json()["message_zh"]
    other = await library.client.post(url, headers=library.headers(Role.BUREAU, [OTHER_COUNTY]))
    assert other.status_code == 404
    done = await library.client.post(url, headers=library.headers(Role.BUREAU))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "published" and done.json()["status_label"] == "已发布"
    again = await library.client.post(url, headers=library.headers(Role.BUREAU))
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"


async def test_other_counties_cannot_see_unpublished_nominations(library: Library, unique: str) -> None:
    _, entry_id, _ = await nominate(library, unique)
    own_centre = await library.client.get(f"/api/v1/entries/{entry_id}", headers=library.headers(Role.CENTER))
    assert own_centre.status_code == 200 and own_centre.json()["history"]
    for role in (Role.BUREAU, Role.CENTER, Role.MEDIATOR):
        other = library.headers(role, [OTHER_COUNTY])
        assert (await library.client.get(f"/api/v1/entries/{entry_id}", headers=other)).status_code == 404
        listed = await library.client.get("/api/v1/entries", headers=other)
        assert entry_id not in {e["id"] for e in listed.json()}
    # A mediator of the county sees only their own nominations.
    nominator = library.headers(Role.MEDIATOR, sub="test-mediator")
    assert (await library.client.get(f"/api/v1/entries/{entry_id}", headers=nominator)).status_code == 200
    colleague = library.headers(Role.MEDIATOR, sub="another-mediator")
    assert (await library.client.get(f"/api/v1/entries/{entry_id}", headers=colleague)).status_code == 404
    queue = await library.client.get("/api/v1/entries?status=nominated", headers=library.headers(Role.BUREAU))
    assert entry_id in {e["id"] for e in queue.json()}
    # Once published, every county's staff can read it, without the county's internals.
    await library.client.post(f"/api/v1/entries/{entry_id}/publish", headers=library.headers(Role.BUREAU))
    shown = await library.client.get(
        f"/api/v1/entries/{entry_id}", headers=library.headers(Role.MEDIATOR, [OTHER_COUNTY])
    )
    assert shown.status_code == 200
    assert shown.json()["history"] == [] and shown.json()["case_id"] is None and shown.json()["note"] == ""


async def test_personal_data_is_refused_on_edit_and_on_publication_naming_the_field(
    library: Library, unique: str
) -> None:
    _, entry_id, p = await nominate(library, unique)
    bureau = library.headers(Role.BUREAU)
    typed = await library.client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"commentary": "可联系申请人13912345678了解详情。", "title": "过道堆物纠纷案"},
        headers=bureau,
    )
    assert typed.status_code == 422
    assert [(e["field"], e["code"]) for e in typed.json()["errors"]] == [("commentary", "personal_data")]
    assert "手机号码" in typed.json()["errors"][0]["message_zh"]
    assert "13912345678" not in typed.text
    # A party's real name typed back in is recognised (by its fingerprint).
    named = await library.client.patch(
        f"/api/v1/entries/{entry_id}", json={"commentary": f"{p.applicant}的诉求合理。"}, headers=bureau
    )
    assert named.status_code == 422 and named.json()["errors"][0]["field"] == "commentary"
    # Text stored before a pattern was known (or written around the API) blocks publication.
    await library.service.repo.entries.update_one({"_id": entry_id}, {"$set": {"follow_up": "车牌鲁Q·D1234"}})
    refused = await library.client.post(f"/api/v1/entries/{entry_id}/publish", headers=bureau)
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("follow_up", "personal_data")]
    fixed = await library.client.patch(
        f"/api/v1/entries/{entry_id}", json={"follow_up": "回访时双方关系缓和。"}, headers=bureau
    )
    assert fixed.status_code == 200
    assert (
        await library.client.post(f"/api/v1/entries/{entry_id}/publish", headers=bureau)
    ).status_code == 200


async def test_every_step_is_recorded_and_announced(library: Library, unique: str) -> None:
    _, entry_id, _ = await nominate(library, unique)
    bureau = library.headers(Role.BUREAU, sub="bureau-reviewer")
    edited = await library.client.patch(
        f"/api/v1/entries/{entry_id}",
        json={
            "version": 1,
            "title": "共用过道堆放杂物引发的相邻纠纷",
            "commentary": "本案调解员现场查看、面对面协商，讲清相邻关系规则，值得借鉴。",
            "techniques": ["on_site", "face_to_face", "law_explaining"],
        },
        headers=bureau,
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    stale = await library.client.patch(
        f"/api/v1/entries/{entry_id}", json={"version": 1, "title": "旧版本上的修改"}, headers=bureau
    )
    assert stale.status_code == 409
    await library.client.post(f"/api/v1/entries/{entry_id}/publish", json={"version": 2}, headers=bureau)
    withdrawn = await library.client.post(
        f"/api/v1/entries/{entry_id}/withdraw", json={"reason": "同类案例已足够"}, headers=bureau
    )
    assert withdrawn.status_code == 200
    history = withdrawn.json()["history"]
    assert [h["action"] for h in history] == ["nominate", "edit", "publish", "withdraw"]
    assert history[1]["changed"] == ["commentary", "techniques", "title"]
    assert {h["by"] for h in history[1:]} == {"bureau-reviewer"}
    assert history[3]["note"] == "同类案例已足够"
    events = await library_events(library, entry_id, at_least=3)
    assert events == ["EntryNominated", "EntryPublished", "EntryWithdrawn"]
    found = await library.client.get("/api/v1/search?q=过道杂物", headers=bureau)
    assert entry_id not in {h["id"] for h in found.json()["hits"]}


async def test_a_declined_case_can_be_nominated_again(library: Library, unique: str) -> None:
    case_id, entry_id, p = await nominate(library, unique)
    bureau = library.headers(Role.BUREAU)
    declined = await library.client.post(
        f"/api/v1/entries/{entry_id}/decline", json={"reason": "案情较简单"}, headers=bureau
    )
    assert declined.json()["status"] == "declined"
    await library.send(topics.LIBRARY_NOMINATIONS, nomination(case_id, p, protector=library.protector()))

    async def back() -> bool:
        entry = await library.service.repo.get_entry(entry_id)
        return entry is not None and entry.status == EntryStatus.NOMINATED

    await eventually(back)
    entry = await library.service.repo.get_entry(entry_id)
    assert entry is not None
    assert [h.action for h in entry.history] == ["nominate", "decline", "renominate"]


async def test_published_cases_are_searched_suggested_and_exported(library: Library, unique: str) -> None:
    _, entry_id, p = await nominate(library, unique)
    bureau = library.headers(Role.BUREAU)
    await library.client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"commentary": "现场查看、面对面协商，化解了多年的过道之争。", "title": "过道堆物纠纷案"},
        headers=bureau,
    )
    assert (
        await library.client.post(f"/api/v1/entries/{entry_id}/publish", headers=bureau)
    ).status_code == 200
    staff = library.headers(Role.MEDIATOR, [OTHER_COUNTY])
    found = await library.client.get(
        "/api/v1/search",
        params={"q": "邻居过道堆放杂物 三轮车无法通行", "category": "neighbourhood", "technique": "on_site"},
        headers=staff,
    )
    assert found.status_code == 200
    assert found.json()["hits"][0]["id"] == entry_id and found.json()["hits"][0]["shared_terms"]
    filtered = await library.client.get(
        "/api/v1/search", params={"q": "过道杂物", "category": "labour"}, headers=staff
    )
    assert entry_id not in {h["id"] for h in filtered.json()["hits"]}
    # An open case of the county, known from intake's CaseRegistered.
    open_case = new_case_id()
    await library.send(topics.CASES, registered(open_case))
    await eventually(lambda: library.service.repo.get_open_case(open_case))
    mediator = library.headers(Role.MEDIATOR)
    by_id = await library.client.get(f"/api/v1/suggestions?case={open_case}", headers=mediator)
    assert by_id.status_code == 200 and entry_id in {s["id"] for s in by_id.json()["suggestions"]}
    by_text = await library.client.post(
        "/api/v1/suggestions",
        json={"case_id": open_case, "description": "邻居在两家之间的过道上堆了杂物，车子出不去。"},
        headers=mediator,
    )
    top = by_text.json()["suggestions"][0]
    assert top["id"] == entry_id and "过道" in top["reason"] and "同为邻里纠纷" in top["reason"]
    elsewhere = await library.client.get(
        f"/api/v1/suggestions?case={open_case}", headers=library.headers(Role.MEDIATOR, [OTHER_COUNTY])
    )
    assert elsewhere.status_code == 404
    document = await library.client.get(f"/api/v1/entries/{entry_id}/document", headers=staff)
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/vnd.openxmlformats")
    text = "\n".join(par.text for par in docx.Document(io.BytesIO(document.content)).paragraphs)
    for heading in (
        "过道堆物纠纷案",
        "一、基本案情",
        "二、调解过程",
        "三、调解结果",
        "四、评析",
        "化解了多年的过道之争",
    ):
        assert heading in text
    assert p.applicant not in text and p.respondent not in text and p.phone not in text
