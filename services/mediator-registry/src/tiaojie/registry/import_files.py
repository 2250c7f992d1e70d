"""Roster files: reading a workbook or a CSV into rows, matching its header to the
columns, parsing each row's cells, and the report an import answers with (every issue
with its row as the spreadsheet shows it, its column header, and the reason in Chinese
and English).

A workbook is hostile input: a few kilobytes can declare a sheet of 1,048,576 × 16,384
cells (which a reader pads out cell by cell) or inflate to gigabytes. So the archive's
declared sizes and the sheet's declared dimension are checked before any cell is read,
the sheet is read in openpyxl's read-only (streaming) mode and never wider than the limit
whatever it declares, and its XML is parsed by defusedxml (openpyxl uses it when it is
installed: no entity expansion, no external entities). The importer runs this in a
worker thread, off the event loop."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import load_workbook
from pydantic import BaseModel, Field

from tiaojie.registry.import_cells import CellError, Column, text
from tiaojie.runtime.errors import FieldError

HEADER_ROW = 1
# A roster has 20 columns; room for a bureau's own notes, never a sheet's 16,384.
MAX_COLUMNS = 64
# What the workbook's parts may inflate to, together (a 20,000-row roster is some 20 MiB).
MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024


class ImportIssue(BaseModel):
    row: int
    column: str
    code: str
    message_zh: str
    message_en: str


class ImportReport(BaseModel):
    kind: str  # organisations | mediators
    format: str  # xlsx | csv
    dry_run: bool
    rows: int = 0
    valid_rows: int = 0
    errors: list[ImportIssue] = Field(default_factory=list)
    warnings: list[ImportIssue] = Field(default_factory=list)
    imported: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def clean(self) -> bool:
        return not self.errors


class ImportTooLarge(Exception):
    """A file beyond a limit, refused before its cells are read; says which limit, in
    Chinese and English."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


def too_many_rows(max_rows: int) -> ImportTooLarge:
    return ImportTooLarge(
        "too_many_rows", f"行数超过上限（最多{max_rows}行）", f"more than {max_rows} rows (the limit)"
    )


def too_many_columns(max_columns: int) -> ImportTooLarge:
    return ImportTooLarge(
        "too_many_columns",
        f"列数超过上限（最多{max_columns}列）",
        f"more than {max_columns} columns (the limit)",
    )


def check_archive(content: bytes) -> None:
    """Refuse a workbook whose parts declare more than the limit uncompressed (a zip bomb),
    from the archive's directory alone."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CellError(
            "not_xlsx", "无法读取该 Excel 文件", "the file is not a readable .xlsx workbook"
        ) from exc
    if declared > MAX_UNCOMPRESSED_BYTES:
        limit = MAX_UNCOMPRESSED_BYTES // (1024 * 1024)
        raise ImportTooLarge(
            "workbook_too_large",
            f"工作簿解压后超过上限（最多{limit} MiB）",
            f"the workbook inflates to more than {limit} MiB (the limit)",
        )


def sniff_format(content: bytes, declared: str | None) -> str:
    if declared in ("xlsx", "csv"):
        return declared
    return "xlsx" if content[:2] == b"PK" else "csv"


def read_rows(content: bytes, fmt: str, *, max_rows: int, max_columns: int = MAX_COLUMNS) -> list[list[Any]]:
    """All rows of the first sheet (or the CSV), header first, trailing blanks dropped;
    ImportTooLarge beyond a limit (blocking: run it in a worker thread)."""
    rows: list[list[Any]] = []
    if fmt == "xlsx":
        check_archive(content)
        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise CellError(
                "not_xlsx", "无法读取该 Excel 文件", "the file is not a readable .xlsx workbook"
            ) from exc
        try:
            sheet = book.worksheets[0]
            # The declared dimension (<dimension ref="A1:XFD1048576"/>), read without a cell.
            if (sheet.max_column or 0) > max_columns:
                raise too_many_columns(max_columns)
            if (sheet.max_row or 0) > max_rows + 1:
                raise too_many_rows(max_rows)
            # Never wider than the limit, whatever the sheet declares or its cells say.
            for values in sheet.iter_rows(max_col=max_columns, values_only=True):
                rows.append(list(values))
                if len(rows) > max_rows + 1:
                    raise too_many_rows(max_rows)
        finally:
            book.close()
    else:
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                decoded = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise CellError(
                "encoding", "CSV 文件编码无法识别（应为 UTF-8 或 GBK）", "CSV must be UTF-8 or GBK"
            )
        for values in csv.reader(io.StringIO(decoded)):
            if len(values) > max_columns:
                raise too_many_columns(max_columns)
            rows.append(list(values))
            if len(rows) > max_rows + 1:
                raise too_many_rows(max_rows)
    while rows and all(text(v) is None for v in rows[-1]):
        rows.pop()
    return rows


def map_header(
    header: Sequence[Any], columns: Sequence[Column]
) -> tuple[dict[int, Column], list[ImportIssue]]:
    known = {h.lower(): c for c in columns for h in c.headers}
    mapping: dict[int, Column] = {}
    issues = []
    for index, raw in enumerate(header):
        name = text(raw)
        if name is None:
            continue
        column = known.get(re.sub(r"[\s*＊]", "", name).lower())
        if column is None:
            issues.append(
                new_issue(HEADER_ROW, name, "unknown_column", "无法识别的列名", "unrecognised column")
            )
        elif column in mapping.values():
            issues.append(new_issue(HEADER_ROW, name, "duplicate_column", "列名重复", "column appears twice"))
        else:
            mapping[index] = column
    present = set(mapping.values())
    for column in columns:
        if column.required and column not in present:
            issues.append(
                new_issue(
                    HEADER_ROW,
                    column.headers[0],
                    "missing_column",
                    "缺少必需的列",
                    "a required column is missing",
                )
            )
    return mapping, issues


def new_issue(row: int, column: str, code: str, zh: str, en: str) -> ImportIssue:
    return ImportIssue(row=row, column=column, code=code, message_zh=zh, message_en=en)


@dataclass
class ParsedRow:
    row: int
    values: dict[str, Any]
    headers: dict[str, str]  # field -> header as written in the file
    issues: list[ImportIssue] = field(default_factory=list)

    def issue(self, error: FieldError) -> None:
        top = error.field.split(".")[0]
        column = self.headers.get(top, top)
        self.issues.append(new_issue(self.row, column, error.code, error.zh, error.en))


def parse_rows(rows: list[list[Any]], mapping: dict[int, Column], header: Sequence[Any]) -> list[ParsedRow]:
    parsed = []
    headers = {c.field: text(header[i]) or c.headers[0] for i, c in mapping.items()}
    for offset, values in enumerate(rows):
        number = HEADER_ROW + 1 + offset
        if all(text(v) is None for v in values):
            continue
        item = ParsedRow(row=number, values={}, headers=headers)
        for index, column in mapping.items():
            raw = values[index] if index < len(values) else None
            try:
                parsed_value = column.parse(raw)
            except CellError as exc:
                item.issues.append(new_issue(number, headers[column.field], exc.code, exc.zh, exc.en))
                continue
            if parsed_value is None or parsed_value == []:
                if column.required:
                    item.issues.append(
                        new_issue(
                            number,
                            headers[column.field],
                            "missing",
                            "缺少必填字段",
                            "a required value is missing",
                        )
                    )
                continue
            item.values[column.field] = parsed_value
        parsed.append(item)
    return parsed
