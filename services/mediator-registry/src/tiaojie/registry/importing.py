"""Roster import from the spreadsheets justice bureaus keep (.xlsx with openpyxl, or .csv).

A dry run reports every row's problems (row number as the spreadsheet shows it, column
header, reason in Chinese and English); a real import checks the same way and writes
nothing unless every row is clean. Rows are matched to what is stored by natural keys
(organisation: its code, else name + division code; mediator: the keyed hash of the ID
number), so importing the same roster again updates in place and never duplicates.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import load_workbook
from pydantic import BaseModel, Field, ValidationError

from tiaojie.contracts.common import (
    CATEGORY_LABELS,
    Category,
    DivisionLevel,
    MediatorGrade,
    MediatorStatus,
    OrganisationKind,
)
from tiaojie.registry.models import (
    BACKGROUND_LABELS,
    GRADE_LABELS,
    LEVEL_LABELS,
    ORGANISATION_KIND_LABELS,
    STATIONED_LABELS,
    STATUS_LABELS,
    Background,
    MediatorIn,
    OrganisationDoc,
    OrganisationIn,
    StationedAt,
)
from tiaojie.registry.service import RegistryService, natural_organisation_id
from tiaojie.runtime.errors import FieldError, field_errors

HEADER_ROW = 1


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
    pass


# -- cell parsing ------------------------------------------------------------------------


class CellError(ValueError):
    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


_SPLIT = re.compile(r"[、,，;；/|\n]+")
_YES = {"是", "有", "已备案", "备案", "在用", "运行", "正常", "y", "yes", "true", "1", "√"}
_NO = {"否", "无", "未备案", "停用", "撤销", "n", "no", "false", "0", "×"}


def text(value: Any) -> str | None:
    """A cell as text; integers typed as numbers (codes, phones) keep their digits."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date()
    out = str(value).strip()
    return out or None


def parse_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raw = str(value).strip()
    match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", raw)
    if not match:
        raise CellError("date_format", "日期格式应为 YYYY-MM-DD", "dates must look like YYYY-MM-DD")
    try:
        return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
    except ValueError:
        raise CellError("date_invalid", "日期不存在", "no such date") from None


def parse_bool(value: Any) -> bool | None:
    raw = text(value)
    if raw is None:
        return None
    if raw.lower() in _YES:
        return True
    if raw.lower() in _NO:
        return False
    raise CellError("yes_no", "应填“是”或“否”", "must be yes or no")


def enum_parser(
    labels: dict[Any, str], zh_name: str, extra: dict[str, Any] | None = None
) -> Callable[[Any], Any]:
    lookup: dict[str, Any] = {}
    for member, label in labels.items():
        lookup[str(member).lower()] = member
        lookup[label] = member
    lookup.update(extra or {})

    def parse(value: Any) -> Any:
        raw = text(value)
        if raw is None:
            return None
        found = lookup.get(raw) if raw in lookup else lookup.get(raw.lower())
        if found is None:
            raise CellError("unknown_value", f"无法识别的{zh_name}", f"unrecognised {zh_name} value")
        return str(found)

    return parse


def list_parser(single: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse(value: Any) -> list[Any]:
        raw = text(value)
        if raw is None:
            return []
        return [single(part.strip()) for part in _SPLIT.split(raw) if part.strip()]

    return parse


def id_number_cell(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # 18 digits do not survive a spreadsheet's number type (15 significant digits).
        raise CellError(
            "id_number_as_number",
            "身份证号码须以文本格式保存（数字格式会丢失末位）",
            "ID numbers must be stored as text (the number format loses digits)",
        )
    return text(value)


def int_cell(value: Any) -> int | None:
    raw = text(value)
    if raw is None:
        return None
    if not raw.isdigit():
        raise CellError("integer", "应为整数", "must be a whole number")
    return int(raw)


_CATEGORY = enum_parser(
    CATEGORY_LABELS, "纠纷类别", {"道路交通": Category.ROAD_TRAFFIC, "交通事故": Category.ROAD_TRAFFIC}
)
_KIND = enum_parser(
    ORGANISATION_KIND_LABELS,
    "组织类型",
    {
        "村调委会": OrganisationKind.VILLAGE_COMMITTEE,
        "社区调委会": OrganisationKind.VILLAGE_COMMITTEE,
        "村（社区）人民调解委员会": OrganisationKind.VILLAGE_COMMITTEE,
        "乡镇调委会": OrganisationKind.TOWNSHIP_COMMITTEE,
        "街道调委会": OrganisationKind.TOWNSHIP_COMMITTEE,
        "乡镇（街道）调委会": OrganisationKind.TOWNSHIP_COMMITTEE,
        "企事业单位调委会": OrganisationKind.ENTERPRISE_COMMITTEE,
        "行业性专业性调委会": OrganisationKind.INDUSTRY_COMMITTEE,
        "行业调委会": OrganisationKind.INDUSTRY_COMMITTEE,
        "个人调解室": OrganisationKind.PERSONAL_ROOM,
        "调解中心": OrganisationKind.CENTRE,
        "矛盾纠纷多元化解中心": OrganisationKind.CENTRE,
    },
)
_LEVEL = enum_parser(
    LEVEL_LABELS,
    "层级",
    {
        "市": DivisionLevel.CITY,
        "县": DivisionLevel.COUNTY,
        "区县": DivisionLevel.COUNTY,
        "县区级": DivisionLevel.COUNTY,
        "乡镇": DivisionLevel.TOWNSHIP,
        "街道": DivisionLevel.TOWNSHIP,
        "村": DivisionLevel.VILLAGE,
        "社区": DivisionLevel.VILLAGE,
    },
)
_STATIONED = enum_parser(
    STATIONED_LABELS, "派驻单位", {"派出所": StationedAt.POLICE, "信访局": StationedAt.PETITION}
)
_GRADE = enum_parser(
    GRADE_LABELS,
    "等级",
    {
        "1级": MediatorGrade.FIRST,
        "2级": MediatorGrade.SECOND,
        "3级": MediatorGrade.THIRD,
        "4级": MediatorGrade.FOURTH,
    },
)
_GRADE_LEVEL = enum_parser(
    {DivisionLevel.CITY: "市级", DivisionLevel.COUNTY: "县级"},
    "评定层级",
    {"市": DivisionLevel.CITY, "县": DivisionLevel.COUNTY, "区县级": DivisionLevel.COUNTY},
)
_STATUS = enum_parser(
    STATUS_LABELS,
    "状态",
    {"正常": MediatorStatus.ACTIVE, "停职": MediatorStatus.SUSPENDED, "撤销": MediatorStatus.REVOKED},
)
_BACKGROUND = enum_parser(
    BACKGROUND_LABELS, "职业背景", {"退役军人": Background.VETERAN, "老兵": Background.VETERAN}
)


def _full_time(value: Any) -> bool | None:
    raw = text(value)
    if raw is None:
        return None
    if raw in {"专职", "full_time", "full-time", "是"}:
        return True
    if raw in {"兼职", "part_time", "part-time", "否"}:
        return False
    raise CellError("full_time", "应填“专职”或“兼职”", "must be 专职 (full-time) or 兼职 (part-time)")


@dataclass(frozen=True)
class Column:
    field: str
    headers: tuple[str, ...]  # the first is the canonical Chinese header
    parse: Callable[[Any], Any] = text
    required: bool = False


ORGANISATION_COLUMNS = (
    Column("id", ("组织编码", "编码", "id", "code")),
    Column("name", ("组织名称", "名称", "name"), required=True),
    Column("short_name", ("简称", "short_name"), required=True),
    Column("kind", ("组织类型", "类型", "kind"), _KIND, required=True),
    Column("level", ("层级", "level"), _LEVEL, required=True),
    Column("county", ("所属县区代码", "县区代码", "county"), required=True),
    Column("division_code", ("行政区划代码", "区划代码", "division_code"), required=True),
    Column("parent_id", ("上级组织", "上级组织编码", "parent_id", "parent")),
    Column("categories", ("调解纠纷类别", "行业类别", "categories"), list_parser(_CATEGORY)),
    Column("filed", ("是否备案", "备案状态", "filed"), parse_bool),
    Column("filed_on", ("备案日期", "filed_on"), parse_date),
    Column("active", ("是否运行", "active"), parse_bool),
    Column("stationed_at", ("派驻单位", "stationed_at"), _STATIONED),
    Column("brand_name", ("品牌名称", "brand_name")),
    Column("founder", ("创办人", "founder")),
    Column("address", ("地址", "address")),
    Column("contact_phone", ("联系电话", "contact_phone")),
    Column("hours", ("办公时间", "hours")),
)

MEDIATOR_COLUMNS = (
    Column("id", ("调解员编号", "编号", "id")),
    Column("name", ("姓名", "name"), required=True),
    Column("id_number", ("身份证号码", "身份证号", "id_number"), id_number_cell, required=True),
    Column("phone", ("手机号码", "phone"), text),
    Column("county", ("所属县区代码", "县区代码", "county"), required=True),
    Column(
        "organisation_ids", ("所属调解组织", "所属组织", "organisation_ids"), list_parser(text), required=True
    ),
    Column("full_time", ("专兼职", "full_time"), _full_time),
    Column("government_purchased", ("政府购买服务", "government_purchased"), parse_bool),
    Column("backgrounds", ("职业背景", "backgrounds"), list_parser(_BACKGROUND)),
    Column("specialties", ("擅长领域", "specialties"), list_parser(_CATEGORY)),
    Column("languages", ("语言方言", "languages"), list_parser(text)),
    Column("grade", ("等级", "grade"), _GRADE),
    Column("grade_level", ("评定层级", "grade_level"), _GRADE_LEVEL),
    Column("graded_on", ("评定日期", "graded_on"), parse_date),
    Column("service_started_on", ("从事调解工作日期", "service_started_on"), parse_date),
    Column("certificate_number", ("证书编号", "certificate_number")),
    Column("certificate_issued_on", ("发证日期", "certificate_issued_on"), parse_date),
    Column("certificate_expires_on", ("证书有效期至", "有效期至", "certificate_expires_on"), parse_date),
    Column("status", ("状态", "status"), _STATUS),
    Column("capacity", ("案件容量", "capacity"), int_cell),
)


# -- reading files -------------------------------------------------------------------------


def sniff_format(content: bytes, declared: str | None) -> str:
    if declared in ("xlsx", "csv"):
        return declared
    return "xlsx" if content[:2] == b"PK" else "csv"


def read_rows(content: bytes, fmt: str, *, max_rows: int) -> list[list[Any]]:
    """All rows of the first sheet (or the CSV), header first, trailing blanks dropped."""
    rows: list[list[Any]] = []
    if fmt == "xlsx":
        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise CellError(
                "not_xlsx", "无法读取该 Excel 文件", "the file is not a readable .xlsx workbook"
            ) from exc
        try:
            sheet = book.worksheets[0]
            for values in sheet.iter_rows(values_only=True):
                rows.append(list(values))
                if len(rows) > max_rows + 1:
                    raise ImportTooLarge
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
            rows.append(list(values))
            if len(rows) > max_rows + 1:
                raise ImportTooLarge
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
            issues.append(_issue(HEADER_ROW, name, "unknown_column", "无法识别的列名", "unrecognised column"))
        elif column in mapping.values():
            issues.append(_issue(HEADER_ROW, name, "duplicate_column", "列名重复", "column appears twice"))
        else:
            mapping[index] = column
    present = set(mapping.values())
    for column in columns:
        if column.required and column not in present:
            issues.append(
                _issue(
                    HEADER_ROW,
                    column.headers[0],
                    "missing_column",
                    "缺少必需的列",
                    "a required column is missing",
                )
            )
    return mapping, issues


def _issue(row: int, column: str, code: str, zh: str, en: str) -> ImportIssue:
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
        self.issues.append(_issue(self.row, column, error.code, error.zh, error.en))


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
                item.issues.append(_issue(number, headers[column.field], exc.code, exc.zh, exc.en))
                continue
            if parsed_value is None or parsed_value == []:
                if column.required:
                    item.issues.append(
                        _issue(
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


# -- the importer ---------------------------------------------------------------------------


class RosterImporter:
    """Checks every row as the API would, then (only when all are clean) files them."""

    def __init__(self, service: RegistryService, *, max_rows: int) -> None:
        self.service = service
        self.max_rows = max_rows

    async def run(
        self,
        *,
        kind: str,
        content: bytes,
        fmt: str | None,
        dry_run: bool,
        by: str,
        counties: Sequence[str] | None,
    ) -> ImportReport:
        fmt = sniff_format(content, fmt)
        report = ImportReport(kind=kind, format=fmt, dry_run=dry_run)
        try:
            rows = read_rows(content, fmt, max_rows=self.max_rows)
        except CellError as exc:
            report.errors.append(_issue(0, "-", exc.code, exc.zh, exc.en))
            return report
        except ImportTooLarge:
            report.errors.append(
                _issue(
                    0, "-", "too_many_rows", f"行数超过上限{self.max_rows}", f"more than {self.max_rows} rows"
                )
            )
            return report
        if not rows:
            report.errors.append(_issue(HEADER_ROW, "-", "empty", "文件为空", "the file is empty"))
            return report
        columns = ORGANISATION_COLUMNS if kind == "organisations" else MEDIATOR_COLUMNS
        mapping, header_issues = map_header(rows[0], columns)
        report.errors.extend(header_issues)
        parsed = parse_rows(rows[1:], mapping, rows[0])
        report.rows = len(parsed)
        if kind == "organisations":
            plan = await self._check_organisations(parsed, counties, by)
        else:
            plan = await self._check_mediators(parsed, counties, report, by)
        for item in parsed:
            report.errors.extend(item.issues)
        report.errors.sort(key=lambda i: (i.row, i.column))
        report.valid_rows = sum(1 for item in parsed if not item.issues)
        self.service.metrics.imports.labels(kind, "valid").inc(report.valid_rows)
        self.service.metrics.imports.labels(kind, "invalid").inc(report.rows - report.valid_rows)
        if report.errors or dry_run:
            return report
        for filing in plan:
            outcome = await filing()
            setattr(report, outcome, getattr(report, outcome) + 1)
        report.imported = True
        self.service.metrics.imports.labels(kind, "imported").inc(report.rows)
        return report

    # organisations ------------------------------------------------------------------------
    async def _check_organisations(
        self, parsed: list[ParsedRow], counties: Sequence[str] | None, by: str
    ) -> list[Callable[[], Any]]:
        # Ids first, so that a parent can be named by code or by name (in this file or stored).
        ids: dict[int, str] = {}
        by_name: dict[str, set[str]] = {}
        for item in parsed:
            name, division = item.values.get("name"), item.values.get("division_code")
            if item.values.get("id"):
                ids[item.row] = item.values["id"]
            elif name and division:
                ids[item.row] = await self._organisation_id(name, division)
            if name and item.row in ids:
                by_name.setdefault(name, set()).add(ids[item.row])
        in_file = set(ids.values())
        for item in parsed:
            parent = item.values.get("parent_id")
            if not parent or parent in in_file or await self.service.repo.get_organisation(parent):
                continue
            named = by_name.get(parent) or {
                o.id for o in await self._stored_by_name(parent, item.values.get("county") or "")
            }
            if len(named) == 1:
                item.values["parent_id"] = next(iter(named))
            else:
                item.values.pop("parent_id")
                item.issue(
                    FieldError("parent_id", "unknown_parent", "上级组织不存在", "no such parent organisation")
                )
        models: list[tuple[ParsedRow, OrganisationIn, str]] = []
        seen: dict[str, int] = {}
        for item in parsed:
            data = self._model(item, OrganisationIn)
            if data is None:
                continue
            if counties is not None and data.county not in counties:
                item.issue(
                    FieldError("county", "county_out_of_scope", "无权管理该县区", "county outside your scope")
                )
                continue
            org_id = ids.get(item.row) or await self.service.resolve_organisation_id(data)
            if org_id in seen:
                item.issue(
                    FieldError(
                        "id" if data.id else "name",
                        "duplicate_row",
                        f"与第{seen[org_id]}行是同一调解组织",
                        f"same organisation as row {seen[org_id]}",
                    )
                )
                continue
            seen[org_id] = item.row
            models.append((item, data, org_id))
        batch = {org_id: data.parent_id for _, data, org_id in models}
        for item, data, org_id in models:
            for error in await self.service.check_organisation(
                data=data, organisation_id=org_id, batch=batch
            ):
                item.issue(error)
        order = _parents_first([(org_id, data.parent_id) for _, data, org_id in models])
        position = {org_id: i for i, org_id in enumerate(order)}
        models.sort(key=lambda t: position[t[2]])

        def filing(data: OrganisationIn) -> Callable[[], Any]:
            async def run() -> str:
                return (await self.service.file_organisation(data=data, by=by)).outcome

            return run

        return [filing(data.model_copy(update={"id": org_id})) for _, data, org_id in models]

    async def _organisation_id(self, name: str, division_code: str) -> str:
        for existing in await self.service.repo.organisations_at(division_code):
            if existing.name == name:
                return existing.id
        return natural_organisation_id(division_code, name)

    async def _stored_by_name(self, name: str, county: str) -> list[OrganisationDoc]:
        return [o for o in await self.service.repo.organisations_in(county) if o.name == name]

    # mediators ------------------------------------------------------------------------------
    async def _check_mediators(
        self, parsed: list[ParsedRow], counties: Sequence[str] | None, report: ImportReport, by: str
    ) -> list[Callable[[], Any]]:
        plans: list[Callable[[], Any]] = []
        seen: dict[str, int] = {}
        memberships: dict[str, set[str]] = {}
        for item in parsed:
            values = item.values
            county = values.get("county")
            resolved_orgs = []
            for ref in values.get("organisation_ids", []):
                org = await self.service.repo.get_organisation(ref)
                if org is None and county:
                    named = await self._stored_by_name(ref, county)
                    if len(named) > 1:
                        item.issue(
                            FieldError(
                                "organisation_ids",
                                "ambiguous_organisation",
                                "同名调解组织不止一个，请填写组织编码",
                                "more than one organisation has this name; give its code",
                            )
                        )
                    org = named[0] if len(named) == 1 else None
                resolved_orgs.append(org.id if org else ref)
            if resolved_orgs:
                values["organisation_ids"] = resolved_orgs
            data = self._model(item, MediatorIn)
            if data is None:
                continue
            if counties is not None and data.county not in counties:
                item.issue(
                    FieldError("county", "county_out_of_scope", "无权管理该县区", "county outside your scope")
                )
                continue
            protected, errors = self.service.protect(data)
            for error in errors:
                item.issue(error)
            if protected is None:
                continue
            key = protected.content["id_number_key"]
            if key in seen:
                item.issue(
                    FieldError(
                        "id_number",
                        "duplicate_row",
                        f"与第{seen[key]}行是同一人",
                        f"same person as row {seen[key]}",
                    )
                )
                continue
            seen[key] = item.row
            mediator_id = await self.service.resolve_mediator_id(data, key)
            for error in await self.service.check_mediator(
                data=data, mediator_id=mediator_id, id_number_key=key
            ):
                item.issue(error)
            if item.issues:
                continue
            memberships[mediator_id] = set(data.organisation_ids)
            plans.append(self._register(data.model_copy(update={"id": mediator_id}), by))
        await self._committee_warnings(memberships, report)
        return plans

    def _register(self, data: MediatorIn, by: str) -> Callable[[], Any]:
        async def run() -> str:
            return (await self.service.register_mediator(data=data, by=by)).outcome

        return run

    async def _committee_warnings(self, memberships: dict[str, set[str]], report: ImportReport) -> None:
        """Committees whose membership after this import is outside 3–9: reported, not refused."""
        settings = self.service.settings
        affected = sorted({org for orgs in memberships.values() for org in orgs})
        for org_id in affected:
            org = await self.service.repo.get_organisation(org_id)
            if org is None or org.kind not in _COMMITTEE_KINDS:
                continue
            members = {m for m in await self.service.repo.member_ids(org_id) if m not in memberships}
            members |= {m for m, orgs in memberships.items() if org_id in orgs}
            if not settings.committee_min_members <= len(members) <= settings.committee_max_members:
                report.warnings.append(
                    _issue(
                        0,
                        org_id,
                        "committee_size",
                        f"{org.name}导入后有{len(members)}名成员，调委会应为"
                        f"{settings.committee_min_members}至{settings.committee_max_members}人",
                        f"committee has {len(members)} members after the import; "
                        f"{settings.committee_min_members}-{settings.committee_max_members} expected",
                    )
                )

    # shared ------------------------------------------------------------------------------------
    def _model(self, item: ParsedRow, model: type[Any]) -> Any:
        if item.issues:
            return None
        try:
            return model.model_validate(item.values)
        except ValidationError as exc:
            for error in field_errors(exc):
                item.issue(error)
            return None


_COMMITTEE_KINDS = frozenset(
    {
        OrganisationKind.VILLAGE_COMMITTEE,
        OrganisationKind.TOWNSHIP_COMMITTEE,
        OrganisationKind.ENTERPRISE_COMMITTEE,
        OrganisationKind.INDUSTRY_COMMITTEE,
    }
)


def _parents_first(pairs: list[tuple[str, str | None]]) -> list[str]:
    """Order ids so that a parent filed in the same batch comes before its children."""
    parent_of = dict(pairs)
    order: list[str] = []
    placed: set[str] = set()

    def place(node: str, depth: int = 0) -> None:
        if node in placed or depth > 50:
            return
        parent = parent_of.get(node)
        if parent in parent_of and parent != node:
            place(parent, depth + 1)
        placed.add(node)
        order.append(node)

    for node, _ in pairs:
        place(node)
    return order
