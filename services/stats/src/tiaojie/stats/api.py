"""Stats' HTTP routes (thin: the rules are in service.py, analytics.py and reports.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from tiaojie.contracts.common import Category, Role
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.runtime.errors import FieldError, Invalid, NotFound
from tiaojie.stats.analytics import Analytics
from tiaojie.stats.calendar import local_day
from tiaojie.stats.reports import ReportBuilder, render_html, render_xlsx
from tiaojie.stats.service import StatsService

router = APIRouter(prefix="/api/v1", tags=["statistics"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def get_service(request: Request) -> StatsService:
    return request.app.state.stats


def get_analytics(request: Request) -> Analytics:
    return request.app.state.analytics


def get_reports(request: Request) -> ReportBuilder:
    return request.app.state.reports


Service = Annotated[StatsService, Depends(get_service)]
Viewer = Annotated[Principal, Depends(require_roles(Role.BUREAU, Role.CENTER, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
County = Annotated[str | None, Query(pattern=r"^\d{6}$", description="county code (default: all of yours)")]


def scope(principal: Principal, county: str | None) -> list[str]:
    """The caller's counties, narrowed to one; another county's is 'not found'."""
    if county is None:
        return list(principal.counties)
    if county not in principal.counties:
        raise NotFound("县区", "county")
    return [county]


# The longest period figures are asked for in one request: ten years (a period is read as
# its months; 0001-01-01 to today were 24,000 of them, a request that never finished).
MAX_PERIOD_DAYS = 3653


def check_period(first: date | None, last: date | None, *, field: str = "from") -> None:
    if first is not None and last is not None and first > last:
        raise Invalid(
            [FieldError(field, "from_after_to", "开始日期不能晚于结束日期", "'from' must not be after 'to'")]
        )
    if first is not None and ((last or date.today()) - first).days > MAX_PERIOD_DAYS:
        raise Invalid(
            [
                FieldError(
                    field, "period_too_long", "统计期间最长十年", "a period may be at most ten years long"
                )
            ]
        )


@router.get("/summary", summary="Figures over the caller's counties")
async def summary(
    principal: Viewer,
    service: Service,
    county: County = None,
    township: Annotated[str | None, Query(pattern=r"^\d{9}$")] = None,
    category: Category | None = None,
    first: Annotated[date | None, Query(alias="from", description="first local day, inclusive")] = None,
    last: Annotated[date | None, Query(alias="to", description="last local day, inclusive")] = None,
) -> dict[str, Any]:
    """Received, accepted, rejected, assigned, resolved, failed, withdrawn, success rate
    (调解成功率 = resolved / (resolved + failed)), agreements performed, median and p90 times
    from registration to accept / assign / first session / resolve (调结), timeliness
    against the statutory clocks, open and overdue cases now, and referrals by agency kind
    with their response times. A flow counts in the period in which it happened (local days,
    Asia/Shanghai, both ends included); no period means all time."""
    check_period(first, last)
    counties = scope(principal, county)
    if township is not None and township[:6] not in counties:
        raise NotFound("乡镇（街道）", "township")
    return await service.summary(
        counties=counties, township=township, category=category, first=first, last=last
    )


@router.get("/alerts", summary="Hotspot and individual-risk alerts of the caller's counties")
async def alerts(
    principal: Viewer,
    service: Service,
    county: County = None,
    kind: Annotated[Literal["hotspot", "grave_risk", "repeat_dispute"] | None, Query()] = None,
    status: Annotated[Literal["active", "cleared"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    found = await service.alerts(counties=scope(principal, county), kind=kind, status=status, limit=limit)
    return {"alerts": found, "count": len(found)}


@router.get("/alerts/{alert_id}", summary="One alert")
async def alert(alert_id: str, principal: Viewer, service: Service) -> dict[str, Any]:
    return await service.alert(alert_id=alert_id, counties=principal.counties)


@router.get("/forecast", summary="Cases expected in the next four weeks, per county and category")
async def forecast(
    principal: Viewer,
    service: Service,
    county: County = None,
    category: Category | None = None,
) -> dict[str, Any]:
    """Weekly means with 80% and 95% prediction intervals (see tiaojie.stats.forecast);
    refreshed by the daily analytics run."""
    out = []
    for code in scope(principal, county):
        doc = await service.repo.forecast_of(code)
        if doc is None:
            continue
        weeks = doc.get("categories", {})
        out.append(
            {
                "county": code,
                "issued_on": doc.get("issued_on"),
                "history": {"from": doc.get("history_from"), "to": doc.get("history_to")},
                "categories": [
                    {"category": c, "weeks": weeks[c]}
                    for c in sorted(weeks)
                    if category is None or c == category
                ],
            }
        )
    return {"forecasts": out}


@router.get("/reports/monthly", summary="Monthly report for a justice bureau (.xlsx or HTML)")
async def monthly_report(
    principal: Viewer,
    request: Request,
    month: Annotated[
        str, Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM, years 1900–2099")
    ],
    county: County = None,
    format: Annotated[Literal["html", "xlsx"], Query()] = "html",
) -> Response:
    report = await get_reports(request).build(counties=scope(principal, county), month=month)
    if format == "xlsx":
        filename = f"tiaojie-monthly-{month}.xlsx"
        return Response(
            render_xlsx(report),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return HTMLResponse(render_html(report))


# One run evaluates at most this many days (a year and a day): a longer backfill is several
# runs, so that no request holds a worker for hours.
MAX_RUN_DAYS = 367


@router.post("/analytics/run", summary="Run the daily analytics now (administrators)")
async def run_analytics(
    principal: Admin,
    request: Request,
    through: Annotated[date | None, Query(description="last day to evaluate (default: yesterday)")] = None,
    since: Annotated[
        date | None, Query(description="first day to evaluate (default: the day after the last run)")
    ] = None,
) -> dict[str, Any]:
    analytics = get_analytics(request)
    yesterday = date.fromordinal(local_day(analytics.clock.now()).toordinal() - 1)
    through = through or yesterday
    check_period(since, through, field="since")
    errors = []
    if through > yesterday:
        errors.append(
            FieldError(
                "through", "day_not_over", "只能分析已结束的日期", "only days that are over can be evaluated"
            )
        )
    if since is not None and (through - since).days >= MAX_RUN_DAYS:
        errors.append(
            FieldError(
                "since",
                "period_too_long",
                f"一次最多分析{MAX_RUN_DAYS}天",
                f"at most {MAX_RUN_DAYS} days per run",
            )
        )
    if errors:
        raise Invalid(errors)
    result = await analytics.run(through=through, since=since)
    return {"ran": result is not None, **(result.as_dict() if result else {})}
