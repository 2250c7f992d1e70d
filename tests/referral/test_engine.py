"""Referral on the storage engine, against the real FerretDB and Kafka: what two replicas
racing on one aggregate leave behind, a writer that crashed after its claim, and timers
indexed the old way (before the index became the subjects' own)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest

from tests.referral.conftest import (
    CENTRE,
    COMMITTEE,
    T0,
    Factory,
    assignment_recorded,
    court,
    events_about,
    referral_data,
    registered,
)
from tests.support.data import COUNTY
from tests.support.kafka import read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, CaseStatus
from tiaojie.contracts.intake import CaseAccepted
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.referral.models import AgencyDoc
from tiaojie.referral.projections import CaseInput
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


def renamed(organisation_id: str, version: int) -> OrganisationUpdated:
    return OrganisationUpdated(
        organisation_id=organisation_id,
        version=version,
        name=f"调解委员会 v{version}",
        short_name=f"v{version}",
        kind="township_committee",
        level="township",
        county=COUNTY,
        division_code=f"{COUNTY}009",
    )


async def test_two_replicas_projecting_versions_in_any_order_keep_the_latest(
    make_referral: Factory, unique: str
) -> None:
    """The race a version-guarded upsert loses on FerretDB: concurrent writers of an older
    and a newer version both pass the guard, and the older can be written last."""
    clock = ManualClock(T0)
    replicas = [await make_referral(clock), await make_referral(clock)]
    for round_ in range(5):
        organisation_id = f"org-{unique}-{round_}"
        versions = list(range(1, 9))
        random.shuffle(versions)
        await asyncio.gather(
            *(
                replicas[n % 2].service.project_organisation(event=renamed(organisation_id, v))
                for n, v in enumerate(versions)
            )
        )
        stored = await replicas[0].repository.directory.get(organisation_id)
        assert stored is not None and stored.name == "调解委员会 v8"


async def test_a_batch_of_case_events_handled_on_two_replicas_at_once_starts_mediation_once(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    """A rebalance can hand one partition's batch to two replicas at once: both fold the same
    events, one claim wins each revision, the loser finds the change applied."""
    clock = ManualClock(T0)
    first, second = await make_referral(clock), await make_referral(clock)
    agency = await court(first, f"court-{unique}")
    started: list[str] = []
    for n in range(4):
        doc, _ = await first.service.receive(
            agency=agency, data=referral_data(f"RA{n}-{unique}"), event_id=None
        )
        await first.service.accept_referral(referral_id=doc.id, by="desk-1", counties=[COUNTY])
        case_id = f"case-{unique}-{n}"
        batch: list[CaseInput] = [registered(case_id, doc.id), assignment_recorded(case_id, doc.id)]
        await asyncio.gather(
            first.service.on_case_events(events=batch), second.service.on_case_events(events=batch)
        )
        after = await second.service.get_referral(doc.id)
        assert after is not None and (after.status, after.case_id) == ("in_mediation", case_id)
        assert after.organisation_id == COMMITTEE
        projected = await first.repository.get_case(case_id)
        assert projected is not None and projected.organisation_id == COMMITTEE and not projected.ended
        started.append(doc.id)
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.REFERRALS), expect=5000, timeout=5
    )
    for referral_id in started:
        kinds = [e.type for e in events_about(records, referral_id)]
        assert kinds.count("tiaojie.referral.ReferralInMediation") == 1


async def test_a_change_whose_writer_died_before_publishing_is_published_by_the_sweep(
    make_referral: Factory, settings: RuntimeSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = await make_referral(ManualClock(T0), outbox_grace=0.0)
    agency = await court(parts, f"court-{unique}")
    doc, _ = await parts.service.receive(agency=agency, data=referral_data(f"X-{unique}"), event_id=None)

    async def broker_gone(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the process died here")

    monkeypatch.setattr(parts.host.publisher, "publish_raw", broker_gone)
    with pytest.raises(ConnectionError):
        await parts.service.accept_referral(referral_id=doc.id, by="desk-1", counties=[COUNTY])
    monkeypatch.undo()
    # Claimed: a second answer meets the accepted referral, not the requested one.
    assert (await parts.service.get_referral(doc.id)).status == "accepted"  # type: ignore[union-attr]
    assert await parts.repository.sweep() == 1
    assert await parts.repository.sweep() == 0  # settled
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.REFERRALS), expect=5000, timeout=5
    )
    kinds = [e.type for e in events_about(records, doc.id)]
    assert kinds == ["tiaojie.referral.ReferralRequested", "tiaojie.referral.ReferralAccepted"]


async def test_timers_the_old_index_holds_are_adopted_and_fire(make_referral: Factory, unique: str) -> None:
    clock = ManualClock(T0)
    parts = await make_referral(clock)
    agency = await court(parts, f"court-{unique}")
    doc, _ = await parts.service.receive(agency=agency, data=referral_data(f"L-{unique}"), event_id=None)
    # As stored before: no timer_day on the referral, its timers in the timers collection.
    await parts.repository.referrals.docs.update_one({"_id": doc.id}, {"$unset": {"timer_day": ""}})
    await parts.repository.legacy_timers.insert_many(
        [
            {
                "_id": f"referral:{doc.id}:{key}",
                "subject_kind": "referral",
                "subject_id": doc.id,
                "key": key,
                "at": timer.at,
                "slot": timer.at.date().isoformat(),
            }
            for key, timer in doc.timers.items()
        ]
    )
    clock.advance(timedelta(days=4))
    assert await parts.service.sweep() == 0  # the new index does not know them yet
    assert await parts.service.adopt_legacy_timers() == 1
    assert await parts.repository.legacy_timers.count_documents({}) == 0
    assert await parts.service.sweep() == 2
    state = await parts.service.get_referral(doc.id)
    assert state is not None and state.overdue_stages == ["response"] and state.timer_day is None


async def test_a_case_projected_before_the_engine_keeps_following_its_events(
    make_referral: Factory, unique: str
) -> None:
    parts = await make_referral(ManualClock(T0))
    case_id, assigned_only, assigned_too = f"case-{unique}", f"case-a{unique}", f"case-b{unique}"
    # As stored before: fields set by each event, no version; the projection also held the
    # registry's assignment, alone when it overtook intake's registration.
    await parts.repository.cases.docs.insert_many(
        [
            {"_id": case_id, "county": COUNTY, "status": "received", "organisation_id": CENTRE, "at": T0},
            {"_id": assigned_only, "assigned_organisation_id": COMMITTEE, "version": 1},
            {
                "_id": assigned_too,
                "county": COUNTY,
                "status": "resolved",
                "organisation_id": COMMITTEE,
                "assigned_organisation_id": COMMITTEE,
                "referral_id": "r-old",
                "at": T0,
                "version": 3,
            },
        ]
    )
    assert await parts.repository.get_case(assigned_only) is None  # no case known yet
    ended = await parts.repository.get_case(assigned_too)
    assert ended is not None and ended.ended and ended.organisation_id == COMMITTEE
    accepted = {
        "county": COUNTY,
        "status": CaseStatus.ACCEPTED,
        "at": T0 + timedelta(hours=1),
        "organisation_id": COMMITTEE,
        "case_number": "(2026)临兰人调字第1号",
        "mediation_due": T0 + timedelta(days=30),
    }
    await parts.service.on_case_events(
        events=[CaseAccepted(case_id=case_id, **accepted), CaseAccepted(case_id=assigned_only, **accepted)]
    )
    for one in (case_id, assigned_only):
        projected = await parts.repository.get_case(one)
        assert projected is not None and (projected.ended, projected.organisation_id) == (False, COMMITTEE)
    continued = await parts.repository.cases.get(assigned_only)
    assert continued is not None and continued["version"] == 2


async def test_a_registration_that_stopped_before_its_announcement_is_completed_by_registering_again(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    parts = await make_referral(ManualClock(T0))
    agency_id = f"court-h{unique}"
    # What a registration that died after storing the agency leaves: no topics, no announcement.
    half = AgencyDoc(
        id=agency_id,
        kind=AgencyKind.COURT,
        county=COUNTY,
        name="兰山区人民法院",
        source=f"/agencies/{agency_id}",
        registered_at=T0,
        registered_by="admin",
        kafka_principal=parts.service.access.principal(agency_id, 1),
        announced=False,
    )
    assert await parts.repository.agencies.create(half.to_mongo())
    again, created, credential = await parts.service.register_agency(
        agency_id=agency_id,
        kind=AgencyKind.COURT,
        county=COUNTY,
        name="兰山区人民法院",
        source=None,
        by="admin",
    )
    assert not created and credential is None and again.announced
    announced = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.AGENCIES), expect=500, timeout=3
    )
    assert len([r for r in announced if r.key == agency_id.encode()]) == 1
