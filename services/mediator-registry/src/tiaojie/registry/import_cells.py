"""Roster cells: how the values justice bureaus type into a spreadsheet are read, and the
columns of each roster (headers in Chinese or English, the first one canonical)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

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
    StationedAt,
)


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
