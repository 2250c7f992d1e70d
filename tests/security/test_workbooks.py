"""Hostile spreadsheets, as a stranger would upload them to the registry, and names filed
to be run as formulas when a bureau opens an export.

The bombs are a few kilobytes that declare (or inflate to) more than any roster: the
registry must refuse them with a 422 naming the limit before it reads a single cell. A
tripwire on openpyxl's cell reader makes the code before the fix fail at once (it would
otherwise pad 20,002 × 16,384 cells, minutes of CPU and gigabytes of memory), and a
timeout guards the suite whatever happens."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from datetime import date
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from tests.registry.conftest import RegistryHarness
from tests.registry.conftest import registry as registry
from tiaojie.contracts.common import Role
from tiaojie.registry import import_files
from tiaojie.registry.compliance import ReportSettings, build_report, report_csv
from tiaojie.registry.models import MediatorDoc, OrganisationDoc

LANSHAN = "371302"
HEADER = ["调解员编号", "姓名", "身份证号码", "所属县区代码", "所属调解组织"]


def workbook(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewrite(content: bytes, part: str, change: Any, *, extra: dict[str, bytes] | None = None) -> bytes:
    """The workbook with one part's XML changed (and parts added)."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == part else data)
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return out.getvalue()


def dimension_bomb() -> bytes:
    """Two real rows, and a sheet declaring every cell of Excel: A1:XFD1048576."""
    plain = workbook([HEADER, ["m-1", "王某", "371302198001011239", LANSHAN, "org-1"]])
    return rewrite(
        plain,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b'<dimension ref="A1:E2"/>', b'<dimension ref="A1:XFD1048576"/>'),
    )


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the moment openpyxl starts producing cells, and records the threads that open
    workbooks."""
    opened: list[str] = []
    real_load = import_files.load_workbook

    def no_cells(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("cells were read from a workbook beyond the limits")

    def load(*args: Any, **kwargs: Any) -> Any:
        opened.append(threading.current_thread().name)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(ReadOnlyWorksheet, "_cells_by_row", no_cells)
    monkeypatch.setattr(import_files, "load_workbook", load)
    return opened


def test_the_bomb_declares_what_the_test_says() -> None:
    book = openpyxl.load_workbook(io.BytesIO(dimension_bomb()), read_only=True)
    sheet = book.worksheets[0]
    assert (sheet.max_row, sheet.max_column) == (1_048_576, 16_384)
    assert len(dimension_bomb()) < 8 * 1024
    book.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("dry_run", ["true", "false"])
async def test_a_workbook_declaring_every_cell_of_excel_is_refused_before_a_cell_is_read(
    registry: RegistryHarness, tripwire: list[str], dry_run: str
) -> None:
    response = await registry.http.post(
        "/api/v1/imports/mediators",
        content=dimension_bomb(),
        params={"dry_run": dry_run},
        headers=registry.headers(Role.BUREAU, [LANSHAN]),
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "too_many_columns"
    assert "64" in error["message_zh"] and "64" in error["message_en"]
    # Opened in a worker thread, never on the event loop's.
    assert tripwire and threading.main_thread().name not in tripwire


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_workbook_declaring_more_rows_than_the_limit_is_refused(
    registry: RegistryHarness, tripwire: list[str]
) -> None:
    plain = workbook([HEADER, ["m-1", "王某", "371302198001011239", LANSHAN, "org-1"]])
    bomb = rewrite(
        plain,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b'<dimension ref="A1:E2"/>', b'<dimension ref="A1:E1048576"/>'),
    )
    response = await registry.http.post(
        "/api/v1/imports/mediators", content=bomb, headers=registry.headers(Role.BUREAU, [LANSHAN])
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "too_many_rows" and str(registry.settings.import_max_rows) in error["message_en"]


@pytest.mark.timeout(60)
def test_a_workbook_that_inflates_beyond_the_limit_is_refused_from_its_directory(
    tripwire: list[str],
) -> None:
    plain = workbook([HEADER])
    # 80 MiB of one byte deflate to some 80 KiB: the archive's directory says what it inflates to.
    bomb = rewrite(plain, "", lambda xml: xml, extra={"xl/media/padding.bin": b"\0" * (80 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    with pytest.raises(import_files.ImportTooLarge) as refused:
        import_files.read_rows(bomb, "xlsx", max_rows=20_000)
    assert refused.value.code == "workbook_too_large" and "64 MiB" in refused.value.en
    assert not tripwire  # refused before the workbook was opened


def test_workbooks_are_parsed_with_defusedxml() -> None:
    # openpyxl parses every part with defusedxml when it is installed (no entity expansion,
    # no external entities): the registry depends on it.
    assert openpyxl.DEFUSEDXML is True


def test_a_csv_with_more_columns_than_the_limit_is_refused_unread() -> None:
    with pytest.raises(import_files.ImportTooLarge) as refused:
        import_files.read_rows(("," * 100_000).encode(), "csv", max_rows=10)
    assert refused.value.code == "too_many_columns"


def test_names_filed_as_formulas_come_out_of_the_compliance_export_as_text() -> None:
    hostile = ['=HYPERLINK("http://evil.example","点击")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    organisations = [
        OrganisationDoc.model_validate(
            {
                "_id": f"org-{i}",
                "name": name,
                "short_name": "恶",
                "kind": "village_committee",
                "level": "village",
                "county": LANSHAN,
                "division_code": f"371302001{i:03d}",
            }
        )
        for i, name in enumerate(hostile)
    ]
    mediators = [
        MediatorDoc.model_validate(
            {
                "_id": f"med-{i}",
                "name": name,
                "county": LANSHAN,
                "organisation_ids": [f"org-{i}"],
                "certificate_number": name,
                "certificate_expires_on": "2026-04-01",
            }
        )
        for i, name in enumerate(hostile)
    ]
    report = build_report(
        county=LANSHAN,
        organisations=organisations,
        mediators=mediators,
        divisions=_NoNames(),  # type: ignore[arg-type]
        today=date(2026, 3, 2),
        settings=ReportSettings(),
    )
    cells = [c for row in csv.reader(io.StringIO(report_csv(report).lstrip("\ufeff"))) for c in row]
    for name in hostile:
        assert name not in cells, f"{name!r} written verbatim"
        assert "'" + name in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


class _NoNames:
    """Divisions without names (the report falls back to the codes)."""

    def name(self, code: str) -> str | None:
        return None
