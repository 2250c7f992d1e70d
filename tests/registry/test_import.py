"""Roster import through the HTTP API against the real database: dry runs report every
row's problems, nothing is imported until clean, re-imports update by natural keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry.conftest import RegistryHarness
from tests.registry.fixtures import COMMITTEE_ID, COUNTY, MEDIATOR_HEADER, csv_bytes, mediators
from tiaojie.contracts.common import Role

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def upload(
    registry: RegistryHarness, kind: str, name: str | bytes, *, dry_run: bool, fmt: str | None = None
) -> tuple[int, dict]:
    body = name if isinstance(name, bytes) else (DATA / name).read_bytes()
    params = {"dry_run": str(dry_run).lower(), **({"format": fmt} if fmt else {})}
    response = await registry.http.post(
        f"/api/v1/imports/{kind}",
        content=body,
        params=params,
        headers={**registry.headers(Role.BUREAU, [COUNTY]), "Content-Type": XLSX},
    )
    return response.status_code, response.json()


@pytest.fixture(scope="module")
async def organisations_imported(registry: RegistryHarness) -> dict:
    status, report = await upload(registry, "organisations", "registry_organisations.xlsx", dry_run=False)
    assert status == 200, report
    return report


async def test_dry_run_of_the_broken_workbook_reports_every_row_and_imports_nothing(
    registry: RegistryHarness, organisations_imported: dict
) -> None:
    status, report = await upload(registry, "mediators", "registry_mediators_broken.xlsx", dry_run=True)
    assert status == 200 and report["dry_run"] is True and report["imported"] is False
    found = {(e["row"], e["column"], e["code"]) for e in report["errors"]}
    assert found == {
        (1, "备注", "unknown_column"),
        (3, "身份证号码", "id_checksum"),
        (4, "身份证号码", "id_number_as_number"),
        (5, "所属调解组织", "unknown_organisation"),
        (6, "评定层级", "grade_level_mismatch"),
        (7, "评定日期", "service_under_one_year"),
        (8, "证书有效期至", "certificate_dates_order"),
        (9, "姓名", "missing"),
        (10, "擅长领域", "unknown_value"),
        (11, "证书有效期至", "date_format"),
        (12, "专兼职", "full_time"),
        (13, "身份证号码", "duplicate_row"),
    }
    assert report["rows"] == 12 and report["valid_rows"] == 1
    for error in report["errors"]:
        assert error["message_zh"] and error["message_en"]
        assert "3713" not in error["message_zh"] + error["message_en"]  # no ID number echoed
    mediators_now = await registry.http.get(
        "/api/v1/mediators", params={"county": COUNTY}, headers=registry.headers(Role.BUREAU, [COUNTY])
    )
    assert mediators_now.json() == []


async def test_real_import_of_a_broken_workbook_is_refused_whole(
    registry: RegistryHarness, organisations_imported: dict
) -> None:
    status, report = await upload(registry, "mediators", "registry_mediators_broken.xlsx", dry_run=False)
    assert status == 422 and report["imported"] is False and report["created"] == 0
    listed = await registry.http.get(
        "/api/v1/mediators", params={"county": COUNTY}, headers=registry.headers(Role.BUREAU, [COUNTY])
    )
    assert listed.json() == []


async def test_clean_import_then_reimport_updates_without_duplicates(
    registry: RegistryHarness, organisations_imported: dict
) -> None:
    assert organisations_imported["created"] == 5 and organisations_imported["errors"] == []
    orgs = await registry.service.repo.organisations_in(COUNTY)
    by_name = {o.name: o for o in orgs}
    assert by_name["相公街道人民调解委员会"].parent_id == "org-371312-centre"  # named parent resolved
    assert by_name["老兵调解工作室"].parent_id == COMMITTEE_ID
    again_status, again = await upload(
        registry, "organisations", "registry_organisations.xlsx", dry_run=False
    )
    assert again_status == 200 and again["unchanged"] == 5 and again["created"] == 0
    assert len(await registry.service.repo.organisations_in(COUNTY)) == 5

    status, first = await upload(registry, "mediators", "registry_mediators.xlsx", dry_run=False)
    assert status == 200, first
    assert first["created"] == 11 and first["imported"] is True
    assert await registry.service.repo.member_ids(COMMITTEE_ID) == [
        "med-371312004-tc-1",
        "med-371312004-tc-2",
        "med-371312004-tc-3",
    ]

    # The same roster as GBK CSV without the id column, one grade changed: matched by ID number.
    rows = mediators()
    rows[0][11], rows[0][12], rows[0][13] = "二级", "市级", "2025-06-01"
    header = MEDIATOR_HEADER[1:]
    body = csv_bytes(header, [r[1:] for r in rows])
    status, second = await upload(registry, "mediators", body, dry_run=False, fmt="csv")
    assert status == 200, second
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 1, 10)
    listed = (
        await registry.http.get(
            "/api/v1/mediators", params={"county": COUNTY}, headers=registry.headers(Role.BUREAU, [COUNTY])
        )
    ).json()
    assert len(listed) == 11
    changed = next(m for m in listed if m["id"] == "med-371312004-tc-1")
    assert changed["grade"] == "2" and changed["version"] == 2
    assert changed["id_number_masked"].startswith("3713") and "*" in changed["id_number_masked"]


async def test_import_outside_the_callers_county_is_refused_per_row(
    registry: RegistryHarness, organisations_imported: dict
) -> None:
    body = (DATA / "registry_organisations.xlsx").read_bytes()
    response = await registry.http.post(
        "/api/v1/imports/organisations",
        content=body,
        params={"dry_run": "true"},
        headers=registry.headers(Role.BUREAU, ["371302"]),
    )
    report = response.json()
    assert {e["code"] for e in report["errors"]} == {"county_out_of_scope"}
    assert {e["row"] for e in report["errors"]} == {2, 3, 4, 5, 6}


async def test_a_file_that_is_not_a_workbook_is_reported(registry: RegistryHarness) -> None:
    status, report = await upload(registry, "mediators", b"PK\x03\x04 not really a zip", dry_run=True)
    assert status == 200 and report["errors"][0]["code"] == "not_xlsx"
