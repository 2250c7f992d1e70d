"""Roster import from the spreadsheets justice bureaus keep (.xlsx with openpyxl, or .csv).

A dry run reports every row's problems (row number as the spreadsheet shows it, column
header, reason in Chinese and English); a real import checks the same way and writes
nothing unless every row is clean. Rows are matched to what is stored by natural keys,
so importing the same roster again updates in place and never duplicates. The file is
read by import_files.py (its cells by import_cells.py) in a worker thread, refused whole
(422 naming the limit) when it is beyond a limit, its rows checked by import_checks.py
against the caller's reach, and the clean rows filed here, many per claim command of the
engine.
"""

from __future__ import annotations

import asyncio

from tiaojie.registry.access import Access
from tiaojie.registry.import_cells import MEDIATOR_COLUMNS, ORGANISATION_COLUMNS, CellError
from tiaojie.registry.import_checks import RowChecks
from tiaojie.registry.import_files import (
    HEADER_ROW,
    ImportReport,
    ImportTooLarge,
    map_header,
    new_issue,
    parse_rows,
    read_rows,
    sniff_format,
)
from tiaojie.registry.service import RegistryService
from tiaojie.runtime.errors import FieldError, Invalid


class RosterImporter:
    """Checks every row as the API would, then (only when all are clean) files them."""

    def __init__(self, service: RegistryService, *, max_rows: int) -> None:
        self.service = service
        self.checks = RowChecks(service)
        self.max_rows = max_rows

    async def run(
        self,
        *,
        kind: str,
        content: bytes,
        fmt: str | None,
        dry_run: bool,
        by: str,
        access: Access | None,
    ) -> ImportReport:
        """Check a roster file and, unless a dry run or any row has errors, file it."""
        fmt = sniff_format(content, fmt)
        report = ImportReport(kind=kind, format=fmt, dry_run=dry_run)
        try:
            # Parsing a workbook is CPU-bound: a worker thread keeps the event loop answering.
            rows = await asyncio.to_thread(read_rows, content, fmt, max_rows=self.max_rows)
        except CellError as exc:
            report.errors.append(new_issue(0, "-", exc.code, exc.zh, exc.en))
            return report
        except ImportTooLarge as exc:
            raise Invalid([FieldError("file", exc.code, exc.zh, exc.en)]) from None
        if not rows:
            report.errors.append(new_issue(HEADER_ROW, "-", "empty", "文件为空", "the file is empty"))
            return report
        columns = ORGANISATION_COLUMNS if kind == "organisations" else MEDIATOR_COLUMNS
        mapping, header_issues = map_header(rows[0], columns)
        report.errors.extend(header_issues)
        parsed = parse_rows(rows[1:], mapping, rows[0])
        report.rows = len(parsed)
        if kind == "organisations":
            organisations = await self.checks.organisations(parsed=parsed, access=access)
        else:
            mediators = await self.checks.mediators(parsed=parsed, access=access, report=report)
        for item in parsed:
            report.errors.extend(item.issues)
        report.errors.sort(key=lambda i: (i.row, i.column))
        report.valid_rows = sum(1 for item in parsed if not item.issues)
        self.service.metrics.imports.labels(kind, "valid").inc(report.valid_rows)
        self.service.metrics.imports.labels(kind, "invalid").inc(report.rows - report.valid_rows)
        if report.errors or dry_run:
            return report
        if kind == "organisations":
            outcomes = [
                f.outcome for f in await self.service.file_organisations(filings=organisations, by=by)
            ]
        else:
            outcomes = [
                f.outcome
                for f in await self.service.register_mediators(registrations=mediators, by=by, access=access)
            ]
        for outcome in outcomes:
            setattr(report, outcome, getattr(report, outcome) + 1)
        report.imported = True
        self.service.metrics.imports.labels(kind, "imported").inc(report.rows)
        return report
