"""The monthly report (.xlsx and HTML with charts) and the gauges, from the scripted
history plus registry snapshots."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from tests.stats.conftest import StatsHarness
from tests.stats.history import EXPECTED, history
from tests.support.data import auth
from tests.support.kafka import eventually
from tiaojie.contracts import topics
from tiaojie.contracts.common import DivisionLevel, OrganisationKind, Role
from tiaojie.contracts.registry import MediatorUpdated, OrganisationUpdated
from tiaojie.runtime.calendar import local_day
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration
COUNTY = "371391"


async def test_monthly_report_and_gauges(stats: StatsHarness, settings: RuntimeSettings) -> None:
    committee = f"org-{COUNTY}001-tc"
    registry = [
        (
            topics.ORGANISATIONS,
            committee,
            OrganisationUpdated(
                organisation_id=committee,
                version=1,
                name="测试街道人民调解委员会",
                short_name="测街",
                kind=OrganisationKind.TOWNSHIP_COMMITTEE,
                level=DivisionLevel.TOWNSHIP,
                county=COUNTY,
                division_code=f"{COUNTY}001",
            ),
        ),
        (
            topics.MEDIATORS,
            "m1",
            MediatorUpdated(
                mediator_id="m1",
                version=1,
                name="甲",
                county=COUNTY,
                organisation_ids=[committee],
                full_time=True,
                certificate_expires_on=date(2030, 1, 1),
            ),
        ),
        (
            topics.MEDIATORS,
            "m2",
            MediatorUpdated(
                mediator_id="m2",
                version=2,
                name="乙",
                county=COUNTY,
                organisation_ids=[committee],
                full_time=True,
                certificate_expires_on=date(2026, 4, 10),
            ),
        ),
    ]
    await stats.publish([*history(prefix="rep-", county=COUNTY), *registry])
    headers = auth(settings, Role.BUREAU, [COUNTY])

    async def ready() -> bool:
        got = (await stats.client.get("/api/v1/summary", params={"county": COUNTY}, headers=headers)).json()
        orgs, mediators = await stats.service.repo.registry_of(COUNTY)
        # Every event projected (not only the first of them: a late failure changes the rate).
        projected = all(got.get(k) == pytest.approx(v) for k, v in EXPECTED.items())
        return projected and len(orgs) == 1 and len(mediators) == 2

    await eventually(ready, timeout=60)
    page = await stats.client.get(
        "/api/v1/reports/monthly", params={"month": "2026-03", "county": COUNTY}, headers=headers
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "人民调解工作月报（2026年3月）" in html and html.count("<svg") >= 3
    assert "调解成功率" in html and "66.7%" not in html  # March alone: 1 resolved, 1 failed
    assert "50.0%" in html

    book = await stats.client.get(
        "/api/v1/reports/monthly",
        params={"month": "2026-03", "county": COUNTY, "format": "xlsx"},
        headers=headers,
    )
    assert book.status_code == 200
    workbook = load_workbook(io.BytesIO(book.content))
    assert workbook.sheetnames == ["县区概况", "乡镇街道", "纠纷类型", "风险预警", "规范化建设", "每日情况"]
    overview = list(workbook["县区概况"].iter_rows(min_row=3, values_only=True))
    heading, row = overview[0], overview[1]
    figures = dict(zip(heading, row, strict=True))
    assert (
        figures["受理申请（件）"] == 8 and figures["调解成功（件）"] == 1 and figures["调解不成（件）"] == 1
    )
    assert figures["调解成功率"] == "50.0%"
    compliance = dict(
        zip(*list(workbook["规范化建设"].iter_rows(min_row=3, values_only=True))[:2], strict=True)
    )
    assert compliance["调解员（人）"] == 2 and compliance["证书30日内到期"] == 1
    assert "乡镇（街道）调委会（≥2人）1/1" in compliance["配备标准达标情况"]

    other = await stats.client.get(
        "/api/v1/reports/monthly", params={"month": "2026-03", "county": "371302"}, headers=headers
    )
    assert other.status_code == 404
    # Months outside the calendar Python can count, as schemathesis sent them (0000-01 was a 500).
    for month in ("2026-13", "0000-01", "9999-12"):
        bad = await stats.client.get("/api/v1/reports/monthly", params={"month": month}, headers=headers)
        assert bad.status_code == 422, month

    await stats.service.refresh_gauges()
    metrics = stats.service.metrics
    assert metrics.cases_open.labels(COUNTY, "accepted")._value.get() == 2
    assert metrics.cases_open.labels(COUNTY, "received")._value.get() == 1
    assert metrics.cases_overdue.labels(COUNTY, "acceptance")._value.get() == 1
    assert metrics.cases_overdue.labels(COUNTY, "mediation")._value.get() == 1
    assert metrics.referrals_overdue.labels(COUNTY, "internal")._value.get() == 1


async def test_an_analytics_run_covers_only_days_that_are_over_and_at_most_a_year(
    stats: StatsHarness, settings: RuntimeSettings
) -> None:
    # schemathesis held a worker for minutes with a run through 9999-12-31.
    admin = auth(settings, Role.ADMIN, [COUNTY])
    today = local_day(stats.clock.now())
    for params, field in (
        ({"through": "9999-12-31"}, "through"),
        ({"through": today.isoformat()}, "through"),
        ({"since": "2020-01-01", "through": "2022-01-01"}, "since"),
        ({"since": "0001-01-01"}, "since"),
    ):
        refused = await stats.client.post("/api/v1/analytics/run", params=params, headers=admin)
        assert refused.status_code == 422, params
        assert [e["field"] for e in refused.json()["errors"]] == [field]


async def test_figures_are_asked_for_at_most_ten_years_at_a_time(
    stats: StatsHarness, settings: RuntimeSettings
) -> None:
    # schemathesis: /summary from 0001-01-01 read 24,000 months and never answered.
    bureau = auth(settings, Role.BUREAU, [COUNTY])
    refused = await stats.client.get("/api/v1/summary", params={"from": "0001-01-01"}, headers=bureau)
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "period_too_long"
    fine = await stats.client.get(
        "/api/v1/summary", params={"from": "2017-01-01", "to": "2026-12-31"}, headers=bureau
    )
    assert fine.status_code == 200
