"""The registry across the mesh, every service a separate process: a roster imported from
.xlsx, a case registered in intake, a mediator assigned with its explanation (a party who
is one of the committee's mediators excludes them), load following the case, and the
compliance report and metrics reflecting a newly suspended mediator."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import httpx
import pytest

from devkit.mesh import Mesh
from tests.registry.fixtures import COMMITTEE_ID, COUNTY, TOWNSHIP, mediators
from tests.support.data import auth
from tests.support.kafka import eventually
from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[1] / "data"


async def metric(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in (await client.get(f"{url}/metrics")).text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_roster_import_assignment_load_and_compliance(mesh: Mesh, settings: RuntimeSettings) -> None:
    registry, intake = mesh.url("registry"), mesh.url("intake")
    bureau = auth(settings, Role.BUREAU, [COUNTY])
    desk = auth(settings, Role.DESK, [COUNTY])
    async with httpx.AsyncClient(timeout=60) as client:
        # 1. The bureau checks, then imports, its roster workbooks.
        for kind, name, count in (
            ("organisations", "registry_organisations.xlsx", 5),
            ("mediators", "registry_mediators.xlsx", 11),
        ):
            body = (DATA / name).read_bytes()
            dry = await client.post(
                f"{registry}/api/v1/imports/{kind}", content=body, params={"dry_run": "true"}, headers=bureau
            )
            assert dry.status_code == 200 and dry.json()["errors"] == [] and dry.json()["imported"] is False
            real = await client.post(
                f"{registry}/api/v1/imports/{kind}", content=body, params={"dry_run": "false"}, headers=bureau
            )
            assert real.status_code == 200, real.text
            assert real.json()["imported"] is True and real.json()["created"] == count
        broken = await client.post(
            f"{registry}/api/v1/imports/mediators",
            content=(DATA / "registry_mediators_broken.xlsx").read_bytes(),
            params={"dry_run": "false"},
            headers=bureau,
        )
        assert broken.status_code == 422 and len({e["row"] for e in broken.json()["errors"]}) == 12

        # 2. A neighbours' dispute in 相公街道; the applicant is one of the committee's mediators.
        conflicted_id, conflicted_number = mediators()[0][0], mediators()[0][2]

        async def register() -> dict | None:
            created = await client.post(
                f"{intake}/api/v1/disputes",
                json={
                    "channel": "desk",
                    "county": COUNTY,
                    "township": TOWNSHIP,
                    "category": "neighbourhood",
                    "description": "邻居在两家中间的过道堆放杂物，影响通行，多次沟通无果。",
                    "applicants": [{"name": "申请人", "id_number": conflicted_number}],
                    "respondents": [{"name": "被申请人"}],
                },
                headers={**desk, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert created.status_code == 201, created.text
            # Intake routes by its projection of our organisations: retry until it has them.
            return created.json() if created.json()["organisation_id"] == COMMITTEE_ID else None

        case = await eventually(register, timeout=60, interval=1.0)

        # 3. The registry assigned a mediator of the committee and explains why.
        async def decided() -> dict | None:
            shown = await client.get(f"{registry}/api/v1/cases/{case['id']}/assignment", headers=desk)
            return shown.json() if shown.status_code == 200 and shown.json()["mediator_id"] else None

        view = await eventually(decided, timeout=60)
        [decision] = view["decisions"]
        event = decision["event"]
        chosen = view["mediator_id"]
        assert chosen.startswith("med-371312004-tc-") and chosen != conflicted_id
        assert event["organisation_id"] == COMMITTEE_ID and event["escalated_from"] is None
        assert {
            "mediator_id": conflicted_id,
            "organisation_id": COMMITTEE_ID,
            "reasons": ["conflict_of_interest"],
        } in (event["excluded"])
        assert set(event["breakdown"]) >= {"specialty", "grade_fit", "headroom", "fairness", "load"}
        assert event["breakdown"]["specialty"] == 1.0 and "擅长邻里纠纷" in event["reason"]
        assert len(event["runners_up"]) == 1  # the third member of the committee

        async def recorded() -> dict | None:
            got = (await client.get(f"{intake}/api/v1/disputes/{case['id']}", headers=desk)).json()
            return got if (got.get("assignment") or {}).get("mediator_id") == chosen else None

        shown = await eventually(recorded, timeout=60)
        assert "擅长邻里纠纷" in shown["assignment"]["reason"]

        # 4. Load follows the case: one open case now, none after the applicant withdraws.
        async def load_of(mediator_id: str) -> int:
            got = await client.get(f"{registry}/api/v1/mediators/{mediator_id}", headers=desk)
            return int(got.json()["load"])

        assert await load_of(chosen) == 1
        withdrawn = await client.post(
            f"{intake}/api/v1/disputes/{case['id']}/withdraw", json={"reason": "双方已自行和解"}, headers=desk
        )
        assert withdrawn.status_code == 200, withdrawn.text

        async def released() -> bool:
            return await load_of(chosen) == 0

        await eventually(released, timeout=60)
        assert (
            await metric(client, registry, "tiaojie_assignments_total", county=COUNTY, outcome="assigned")
            >= 1
        )

        # 5. Suspending a full-time committee member shows in the report, its CSV and the gauges.
        before = (
            await client.get(f"{registry}/api/v1/compliance", params={"county": COUNTY}, headers=bureau)
        ).json()
        township = next(t for t in before["townships"] if t["division_code"] == TOWNSHIP)
        assert (
            township["full_time_active"] == 2
            and township["gap"] == 0
            and township["status"]["suspended"] == 0
        )
        suspended = await client.post(
            f"{registry}/api/v1/mediators/med-371312004-tc-2/status",
            json={"status": "suspended", "reason": "违反“吃请受礼”禁止性规定，暂停调解工作"},
            headers=bureau,
        )
        assert suspended.status_code == 200, suspended.text
        assert (
            suspended.json()["eligible"] is False
            and suspended.json()["ineligible_reasons"][0]["code"] == "suspended"
        )
        after = (
            await client.get(f"{registry}/api/v1/compliance", params={"county": COUNTY}, headers=bureau)
        ).json()
        township = next(t for t in after["townships"] if t["division_code"] == TOWNSHIP)
        assert (
            township["full_time_active"] == 1
            and township["gap"] == 1
            and township["status"]["suspended"] == 1
        )
        assert after["gaps"]["township"] == before["gaps"]["township"] + 1
        assert after["summary"]["status"]["suspended"] == 1
        as_csv = await client.get(
            f"{registry}/api/v1/compliance", params={"county": COUNTY, "format": "csv"}, headers=bureau
        )
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
        header = rows[1]
        row = next(r for r in rows if len(r) > 2 and r[1] == TOWNSHIP)
        assert row[header.index("暂停 (suspended)")] == "1"
        assert row[header.index("在岗专职调解员 (full_time_active)")] == "1"
        assert (
            await metric(client, registry, "tiaojie_compliance_gap", county=COUNTY, norm="township")
            == after["gaps"]["township"]
        )

        async def gauge_moved() -> bool:
            return (
                await metric(
                    client, registry, "tiaojie_mediators", county=COUNTY, grade="4", status="suspended"
                )
                == 1
            )

        await eventually(gauge_moved, timeout=30)
        other_county = auth(settings, Role.BUREAU, ["371302"])
        hidden = await client.get(
            f"{registry}/api/v1/compliance", params={"county": COUNTY}, headers=other_county
        )
        assert hidden.status_code == 404
