"""Filing rules that need no database: divisions, kinds and levels, grades, certificates.

Shared by the HTTP API and the roster import, so a row is refused for the same reasons
a request would be. Messages never repeat an input value (personal data stays out).
"""

from __future__ import annotations

from datetime import date

from tiaojie.contracts.common import DivisionLevel, OrganisationKind
from tiaojie.registry.models import MediatorIn, OrganisationIn, Sanction, evaluating_level
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import FieldError

# Which administrative level each kind of organisation may sit at.
ALLOWED_LEVELS: dict[OrganisationKind, frozenset[DivisionLevel]] = {
    OrganisationKind.VILLAGE_COMMITTEE: frozenset({DivisionLevel.VILLAGE}),
    OrganisationKind.TOWNSHIP_COMMITTEE: frozenset({DivisionLevel.TOWNSHIP}),
    OrganisationKind.CENTRE: frozenset({DivisionLevel.CITY, DivisionLevel.COUNTY, DivisionLevel.TOWNSHIP}),
}


def _err(field: str, code: str, zh: str, en: str) -> FieldError:
    return FieldError(field, code, zh, en)


def division_errors(data: OrganisationIn, divisions: Divisions) -> list[FieldError]:
    """The county exists, and the jurisdiction code exists, lies in it and fits the level."""
    if not divisions.is_county(data.county):
        return [_err("county", "unknown_county", "县级行政区划代码不存在", "no such county code")]
    code, level = data.division_code, data.level
    county = divisions.county(data.county)
    if level == DivisionLevel.CITY:
        city = county.parent if county else None
        if len(code) != 6 or not code.endswith("00") or code[:4] != city:
            return [
                _err(
                    "division_code",
                    "division_not_city",
                    "市级组织的区划代码应为所在市的代码（如371300）",
                    "a city-level organisation's code must be its city's (e.g. 371300)",
                )
            ]
        return []
    if level == DivisionLevel.COUNTY:
        if code != data.county:
            return [
                _err(
                    "division_code",
                    "division_not_county",
                    "县级组织的区划代码应与所属县区一致",
                    "a county-level organisation's code must be its county's",
                )
            ]
        return []
    expected = 9 if level == DivisionLevel.TOWNSHIP else 12
    if len(code) != expected:
        return [
            _err(
                "division_code",
                "division_length",
                f"{'乡镇' if expected == 9 else '村（社区）'}级组织的区划代码应为{expected}位",
                f"a {level}-level organisation's code must have {expected} digits",
            )
        ]
    if not divisions.is_township(code):
        return [_err("division_code", "unknown_division", "乡镇（街道）代码不存在", "no such township code")]
    if divisions.county_of(code) != data.county:
        return [
            _err(
                "division_code",
                "division_outside_county",
                "区划代码不属于所属县区",
                "the division code is not in the given county",
            )
        ]
    return []


def organisation_errors(data: OrganisationIn, *, divisions: Divisions, today: date) -> list[FieldError]:
    """Every rule of a filing that the record itself can be checked against."""
    errors = division_errors(data, divisions)
    allowed = ALLOWED_LEVELS.get(data.kind)
    if allowed is not None and data.level not in allowed:
        errors.append(
            _err(
                "level",
                "level_not_allowed",
                "该类型的调解组织不能设在此层级",
                f"a {data.kind} cannot sit at {data.level} level",
            )
        )
    if data.kind == OrganisationKind.INDUSTRY_COMMITTEE and not data.categories:
        errors.append(
            _err(
                "categories",
                "categories_required",
                "行业性专业性调委会须注明调解的纠纷类别",
                "an industry committee must list the categories it covers",
            )
        )
    if data.kind == OrganisationKind.STATIONED_ROOM and data.stationed_at is None:
        errors.append(
            _err(
                "stationed_at",
                "stationed_at_required",
                "派驻调解室须注明派驻单位（法院、公安、信访）",
                "a stationed room must say where it is stationed (court, police, petition)",
            )
        )
    if data.kind == OrganisationKind.PERSONAL_ROOM and not data.brand_name:
        errors.append(
            _err(
                "brand_name",
                "brand_name_required",
                "个人调解工作室须有品牌名称",
                "a personal mediation room needs its brand name",
            )
        )
    if data.filed_on is not None and data.filed_on > today:
        errors.append(
            _err("filed_on", "date_in_future", "备案日期不能晚于今天", "filing date is in the future")
        )
    if data.parent_id is not None and data.parent_id == data.id:
        errors.append(
            _err(
                "parent_id",
                "parent_is_self",
                "上级组织不能是其本身",
                "an organisation cannot be its own parent",
            )
        )
    return errors


def mediator_errors(data: MediatorIn, *, today: date) -> list[FieldError]:
    """Grades, evaluating levels, service time and certificates."""
    errors: list[FieldError] = []
    if (
        data.grade is not None
        and data.grade_level is not None
        and data.grade_level != evaluating_level(data.grade)
    ):
        errors.append(
            _err(
                "grade_level",
                "grade_level_mismatch",
                "一级、二级调解员由市级评定，三级、四级由县级评定",
                "grades 1-2 are evaluated by the city, grades 3-4 by the county",
            )
        )
    if data.graded_on is not None:
        if data.grade is None:
            errors.append(
                _err("grade", "grade_missing", "填写了评定日期但未填写等级", "graded_on without a grade")
            )
        if data.graded_on > today:
            errors.append(
                _err("graded_on", "date_in_future", "评定日期不能晚于今天", "grading date is in the future")
            )
        if data.service_started_on is not None and data.graded_on < _one_year_after(data.service_started_on):
            errors.append(
                _err(
                    "graded_on",
                    "service_under_one_year",
                    "首次评定等级须从事人民调解工作满一年",
                    "a first grade needs at least one year of service",
                )
            )
    if (
        data.grade is not None
        and data.graded_on is None
        and data.service_started_on is not None
        and today < _one_year_after(data.service_started_on)
    ):
        errors.append(
            _err(
                "service_started_on",
                "service_under_one_year",
                "评定等级须从事人民调解工作满一年",
                "a grade needs at least one year of service",
            )
        )
    if data.service_started_on is not None and data.service_started_on > today:
        errors.append(
            _err(
                "service_started_on",
                "date_in_future",
                "从事调解工作日期不能晚于今天",
                "service start is in the future",
            )
        )
    has_dates = data.certificate_issued_on is not None or data.certificate_expires_on is not None
    if has_dates and not data.certificate_number:
        errors.append(
            _err(
                "certificate_number",
                "certificate_number_missing",
                "填写了证书日期但缺少证书编号",
                "certificate dates without a certificate number",
            )
        )
    if data.certificate_number and data.certificate_expires_on is None:
        errors.append(
            _err(
                "certificate_expires_on",
                "certificate_expiry_missing",
                "证书须填写有效期",
                "a certificate needs its expiry date",
            )
        )
    if (
        data.certificate_issued_on is not None
        and data.certificate_expires_on is not None
        and data.certificate_issued_on >= data.certificate_expires_on
    ):
        errors.append(
            _err(
                "certificate_expires_on",
                "certificate_dates_order",
                "证书有效期应晚于发证日期",
                "certificate expiry must be after its issue date",
            )
        )
    return errors


def discipline_errors(sanction: Sanction, starts_on: date, ends_on: date | None) -> list[FieldError]:
    if sanction == Sanction.SUSPENSION and ends_on is None:
        return [
            _err("ends_on", "period_required", "暂停调解工作须注明期限", "a suspension needs its end date")
        ]
    if ends_on is not None and ends_on < starts_on:
        return [
            _err("ends_on", "period_order", "结束日期不能早于开始日期", "the period ends before it starts")
        ]
    return []


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)
