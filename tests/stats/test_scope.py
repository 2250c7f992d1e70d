"""Stats' routes from another county: the generated scope test of
tests/security/test_service_scope.py, run here after the figures' own tests, on the
session's stats service in its namespace (it shares that service with them)."""

from __future__ import annotations

import pytest

from tests.library.conftest import new_case_id
from tests.security.test_service_scope import (
    STATS_ATTACKS,
    STATS_COUNTY,
    STATS_NO_RECORD_ID,
    T0,
    assert_covered,
)
from tests.stats.conftest import StatsHarness
from tests.stats.test_alerts import alerts
from tests.stats.test_alerts import registered as stats_registered
from tests.support.data import OTHER_COUNTY, auth
from tests.support.kafka import eventually
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, RiskLevel, Role
from tiaojie.contracts.intake import RiskRaised
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = [pytest.mark.integration, pytest.mark.security]


async def test_every_stats_route_from_another_county_answers_404_and_shows_nothing(
    stats: StatsHarness, settings: RuntimeSettings
) -> None:
    assert_covered(stats.app, STATS_ATTACKS, STATS_NO_RECORD_ID)
    case = "sc-risk-" + new_case_id()[:8]
    raised = RiskRaised(
        case_id=case,
        county=STATS_COUNTY,
        township=STATS_COUNTY + "001",
        status=CaseStatus.RECEIVED,
        at=T0,
        risk_level=RiskLevel.GRAVE,
        signals=["threat_of_violence"],
        party_keys=[],
    )
    await stats.publish([stats_registered(case, STATS_COUNTY, "org-sc", []), (topics.CASES, case, raised)])
    found = await eventually(lambda: alerts(stats, settings, STATS_COUNTY, kind="grave_risk"), timeout=60)
    alert = found[0]["id"]
    for role in (Role.BUREAU, Role.CENTER, Role.ADMIN):
        stranger = auth(settings, role, [OTHER_COUNTY])
        for _key, call in sorted(STATS_ATTACKS.items()):
            method, url, kwargs = call(alert)
            response = await stats.client.request(method, url, headers=stranger, **kwargs)
            assert response.status_code == 404, f"{role} {method} {url}: {response.status_code}"
        # Nor by naming a township of that county.
        township = {"township": STATS_COUNTY + "001"}
        response = await stats.client.get("/api/v1/summary", params=township, headers=stranger)
        assert response.status_code == 404, response.text
        # Without a county, only the caller's own: never the other county's alert.
        own = await stats.client.get("/api/v1/alerts", headers=stranger)
        assert alert not in {a["id"] for a in own.json()["alerts"]}
        forecasts = await stats.client.get("/api/v1/forecast", headers=stranger)
        assert {f["county"] for f in forecasts.json()["forecasts"]} <= {OTHER_COUNTY}
