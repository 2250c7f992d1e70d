"""Individual alerts (grave risk, repeat disputes across organisations) and live hotspots:
events on stats.alerts.v1, GET /api/v1/alerts scoped by county, once per cause."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from tests.stats.conftest import StatsHarness
from tests.stats.history import T0
from tests.support.data import auth
from tests.support.kafka import eventually, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel, RiskLevel, Role
from tiaojie.contracts.envelope import EventData, decode_event
from tiaojie.contracts.intake import CaseRegistered, CaseResolved, RiskRaised
from tiaojie.contracts.stats import HotspotRaised, RiskAlertRaised
from tiaojie.runtime.settings import RuntimeSettings
from tiaojie.stats.calendar import day_start

pytestmark = pytest.mark.integration


def registered(
    case: str, county: str, org: str, keys: list[str], at: Any = T0, **extra: Any
) -> tuple[str, str, EventData]:
    return (
        topics.CASES,
        case,
        CaseRegistered(
            case_id=case,
            channel=Channel.DESK,
            county=county,
            township=county + "001",
            category=extra.pop("category", Category.NEIGHBOURHOOD),
            organisation_id=org,
            party_keys=keys,
            received_at=at,
            **extra,
        ),
    )


async def alerts(
    stats: StatsHarness, settings: RuntimeSettings, county: str, **params: str
) -> list[dict[str, Any]]:
    response = await stats.client.get(
        "/api/v1/alerts", params=params, headers=auth(settings, Role.BUREAU, [county])
    )
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


async def alert_events(settings: RuntimeSettings, alert_id: str) -> list[Any]:
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.ALERTS), expect=10_000, timeout=4
    )
    return [e for e in (decode_event(r.value) for r in records) if e.data.get("alert_id") == alert_id]


async def test_grave_risk_raises_one_alert_and_concluding_clears_it(
    stats: StatsHarness, settings: RuntimeSettings
) -> None:
    county, case = "371396", "risk-" + uuid.uuid4().hex[:8]
    raised = (
        topics.CASES,
        case,
        RiskRaised(
            case_id=case,
            county=county,
            township=county + "001",
            status=CaseStatus.RECEIVED,
            at=T0,
            risk_level=RiskLevel.GRAVE,
            signals=["threat_of_violence"],
            party_keys=[],
        ),
    )
    await stats.publish([registered(case, county, "org-a", []), raised])
    found = await eventually(lambda: alerts(stats, settings, county, kind="grave_risk"), timeout=60)
    assert found[0]["case_id"] == case and found[0]["status"] == "active"
    assert found[0]["signals"] == ["threat_of_violence"]
    other = await stats.client.get(
        f"/api/v1/alerts/{found[0]['id']}", headers=auth(settings, Role.BUREAU, ["371302"])
    )
    assert other.status_code == 404
    await stats.publish([raised], salt="again")  # a redelivery with a new envelope id
    resolved = (
        topics.CASES,
        case,
        CaseResolved(
            case_id=case,
            county=county,
            status=CaseStatus.RESOLVED,
            at=T0 + timedelta(days=5),
            agreement_form="written",
        ),
    )
    await stats.publish([resolved])

    async def cleared() -> bool:
        got = await alerts(stats, settings, county, kind="grave_risk")
        return bool(got) and got[0]["status"] == "cleared"

    await eventually(cleared, timeout=60)
    events = await eventually(lambda: _two(stats.settings, found[0]["id"]), timeout=30)
    assert [e.type for e in events] == ["tiaojie.stats.RiskAlertRaised", "tiaojie.stats.RiskAlertCleared"]
    payload = RiskAlertRaised.model_validate(events[0].data)
    assert payload.case_id == case and payload.county == county


async def _two(settings: RuntimeSettings, alert_id: str) -> list[Any] | None:
    events = await alert_events(settings, alert_id)
    return events if len(events) == 2 else None


async def test_same_parties_at_another_organisation_is_a_repeat_dispute(
    stats: StatsHarness, settings: RuntimeSettings
) -> None:
    county, other_county = "371395", "371394"
    a, b, c, d = (uuid.uuid4().hex[:8] for _ in range(4))
    keys = [f"pk-{a}", f"pk-{b}"]
    first, second, same_org = f"rep-{a}", f"rep-{b}", f"rep-{c}"
    # The same two parties: first at a police room, then at a village committee of another
    # county; a third case at the committee that already holds one is no news.
    await stats.publish(
        [
            registered(first, other_county, "org-police", keys, at=T0),
            registered(second, county, "org-village", [*keys, f"pk-{d}"], at=T0 + timedelta(days=3)),
        ]
    )
    found = await eventually(lambda: alerts(stats, settings, county, kind="repeat_dispute"), timeout=60)
    assert found[0]["id"] == f"repeat_dispute:{second}"
    # The related case is in a county the caller does not see: shown only as a count.
    assert found[0]["related"] == [] and found[0]["related_elsewhere"] == 1
    both = await stats.client.get(
        f"/api/v1/alerts/{found[0]['id']}", headers=auth(settings, Role.BUREAU, [county, other_county])
    )
    assert [r["case_id"] for r in both.json()["related"]] == [first]
    await stats.publish([registered(same_org, county, "org-village", [f"pk-{c}", f"pk-{d}"], at=T0)])
    await stats.publish(
        [registered(second, county, "org-village", [*keys, f"pk-{d}"], at=T0 + timedelta(days=3))], salt="r"
    )
    await eventually(lambda: _seen(stats, settings, county, same_org), timeout=60)
    assert len(await alerts(stats, settings, county, kind="repeat_dispute")) == 1
    assert len(await alert_events(stats.settings, f"repeat_dispute:{second}")) == 1


async def _seen(stats: StatsHarness, settings: RuntimeSettings, county: str, case: str) -> bool:
    doc = await stats.service.repo.case_store.get(case)
    return doc is not None


async def test_live_hotspot_is_raised_once_then_cleared_and_forecasts_are_served(
    stats: StatsHarness, settings: RuntimeSettings
) -> None:
    county = "371393"
    townships = [f"{county}{n:03d}" for n in range(1, 5)]
    rng = np.random.default_rng(3)
    first, burst = date(2025, 11, 1), date(2026, 2, 2)
    events: list[tuple[str, str, EventData]] = []
    day = first
    n = 0
    while day <= burst + timedelta(days=40):
        for township in townships:
            daily = rng.poisson(0.6 if day.weekday() < 5 else 0.2)
            if township == townships[0] and burst <= day < burst + timedelta(days=4):
                daily += 4  # land-expropriation surge in one township
            for _ in range(daily):
                n += 1
                case = f"hot-{county}-{n}"
                category = (
                    Category.LAND_EXPROPRIATION
                    if township == townships[0] and burst <= day < burst + timedelta(days=4)
                    else Category.NEIGHBOURHOOD
                )
                events.append(
                    (
                        topics.CASES,
                        case,
                        CaseRegistered(
                            case_id=case,
                            channel=Channel.DESK,
                            county=county,
                            township=township,
                            category=category,
                            received_at=day_start(day) + timedelta(hours=2),
                        ),
                    )
                )
        day += timedelta(days=1)
    await stats.publish(events)
    await eventually(lambda: _all_received(stats, settings, county, len(events)), timeout=120)
    await eventually(lambda: stats.recount_marked([key for _topic, key, _data in events]), timeout=60)
    admin = auth(settings, Role.ADMIN, [county])
    ran = await stats.client.post(
        "/api/v1/analytics/run",
        params={
            "since": (burst - timedelta(days=14)).isoformat(),
            "through": (burst + timedelta(days=40)).isoformat(),
        },
        headers=admin,
    )
    assert ran.status_code == 200 and ran.json()["ran"], ran.text
    found = await alerts(stats, settings, county, kind="hotspot")
    surge = [a for a in found if a["township"] == townships[0] and a["category"] == "land_expropriation"]
    assert len(surge) == 1, found
    assert date.fromisoformat(surge[0]["detected_on"]) - burst <= timedelta(days=3)
    assert surge[0]["status"] == "cleared"  # forty quiet days later
    events_on_topic = await alert_events(stats.settings, surge[0]["id"])
    assert [e.type for e in events_on_topic] == [
        "tiaojie.stats.HotspotRaised",
        "tiaojie.stats.HotspotCleared",
    ]
    raised = HotspotRaised.model_validate(events_on_topic[0].data)
    assert raised.observed >= 4 and raised.expected < 1  # the first surge day already says enough
    # Running again over the same days raises nothing new.
    again = await stats.client.post(
        "/api/v1/analytics/run",
        params={
            "since": (burst - timedelta(days=14)).isoformat(),
            "through": (burst + timedelta(days=40)).isoformat(),
        },
        headers=admin,
    )
    assert again.json()["raised"] == 0
    # Replaying every topic into a fresh database re-derives the same alerts.
    from tiaojie.stats.rebuild import rebuild

    result = await rebuild(stats.settings, into="tiaojie_stats_it_rebuild", now=stats.clock.now())
    assert result.equal and not result.late_ranges, result.differences
    forecast = await stats.client.get("/api/v1/forecast", params={"county": county}, headers=admin)
    body = forecast.json()["forecasts"][0]
    weeks = next(c for c in body["categories"] if c["category"] == "neighbourhood")["weeks"]
    assert len(weeks) == 4
    assert all(w["lower_95"] <= w["lower_80"] <= w["mean"] <= w["upper_80"] <= w["upper_95"] for w in weeks)
    # Four townships at ~0.6 a working day: roughly 8-13 neighbourhood cases a week.
    assert 5 < weeks[0]["mean"] < 20


async def _all_received(stats: StatsHarness, settings: RuntimeSettings, county: str, n: int) -> bool:
    response = await stats.client.get(
        "/api/v1/summary", params={"county": county}, headers=auth(settings, Role.BUREAU, [county])
    )
    return response.json()["received"] == n
