"""Registry administration: organisations and mediators, roster import with the dry-run
report, and the compliance report against the staffing norms.

Uploaded rosters are passed straight to the registry and never kept by the console (they
hold ID numbers): a clean dry run is followed by uploading the same file to import it."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from tiaojie.console.models import SessionDoc
from tiaojie.console.upstream import UpstreamError
from tiaojie.console.web import caller_of, render, require, web_of
from tiaojie.contracts.common import Role

router = APIRouter()
Admin = Annotated[SessionDoc, Depends(require(Role.BUREAU, Role.ADMIN))]
KIND_LABELS = {
    "village_committee": "村（社区）调委会",
    "township_committee": "乡镇（街道）调委会",
    "enterprise_committee": "企事业单位调委会",
    "industry_committee": "行业性专业性调委会",
    "stationed_room": "派驻调解室",
    "personal_room": "个人调解室",
    "centre": "矛盾纠纷多元化解中心",
}
GRADE_LABELS = {"1": "一级", "2": "二级", "3": "三级", "4": "四级"}
STATUS_LABELS = {"active": "在岗", "suspended": "暂停", "revoked": "撤销"}
MAX_UPLOAD = 5 * 1024 * 1024


def _county(user: SessionDoc, county: str, names: dict[str, str]) -> str:
    mine = [c for c in user.counties if c in names] or list(user.counties)
    return county if county in mine else (mine[0] if mine else "")


@router.get("/registry", response_class=HTMLResponse)
async def registry(request: Request, user: Admin, county: str = "", organisation: str = "") -> Response:
    web = web_of(request)
    names = dict(web.city_counties())
    chosen = _county(user, county, names)
    caller = caller_of(user)
    organisations, mediators = await asyncio.gather(
        web.upstream.get(caller, "registry", "/api/v1/organisations", county=chosen),
        web.upstream.get(
            caller,
            "registry",
            "/api/v1/mediators",
            **({"organisation_id": organisation} if organisation else {"county": chosen}),
        ),
    )
    by_id = {o["id"]: o for o in organisations}
    return await render(
        request,
        "registry.html",
        organisations=organisations,
        mediators=mediators,
        by_id=by_id,
        counties=[(c, names.get(c, c)) for c in user.counties if c in names],
        chosen=chosen,
        organisation=organisation,
        kind_labels=KIND_LABELS,
        grade_labels=GRADE_LABELS,
        status_labels=STATUS_LABELS,
        place=web.place,
    )


@router.get("/registry/import", response_class=HTMLResponse)
async def import_form(request: Request, user: Admin) -> Response:
    return await render(request, "registry_import.html", report=None, values={})


@router.post("/registry/import", response_class=HTMLResponse)
async def import_roster(request: Request, user: Admin) -> Response:
    form = await request.form()
    kind = form.get("kind") if form.get("kind") in ("organisations", "mediators") else "mediators"
    dry_run = form.get("dry_run") == "on"
    upload = form.get("file")
    values = {"kind": str(kind), "dry_run": "on" if dry_run else ""}
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await render(
            request,
            "registry_import.html",
            status=422,
            report=None,
            values=values,
            failure="请选择要导入的文件",
        )
    name = upload.filename.lower()
    fmt = "csv" if name.endswith(".csv") else "xlsx" if name.endswith(".xlsx") else None
    content = await upload.read(MAX_UPLOAD + 1)
    if fmt is None or len(content) > MAX_UPLOAD:
        return await render(
            request,
            "registry_import.html",
            status=422,
            report=None,
            values=values,
            failure="仅支持 5 MiB 以内的 .xlsx 或 .csv 文件",
        )
    media = (
        "text/csv" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    try:
        response = await web_of(request).upstream.call(
            caller_of(user),
            "registry",
            "POST",
            f"/api/v1/imports/{kind}",
            params={"dry_run": "true" if dry_run else "false", "format": fmt},
            headers={"Content-Type": media},
            content=content,
        )
        report: dict[str, Any] = response.json()
    except UpstreamError as exc:
        if exc.status != 422 or "rows" not in exc.body:
            raise
        report = exc.body  # the file has errors: the report says which rows and columns
    return await render(
        request,
        "registry_import.html",
        status=200 if not report.get("errors") else 422,
        report=report,
        values=values,
        filename=upload.filename,
    )


@router.get("/registry/compliance", response_class=HTMLResponse)
async def compliance(request: Request, user: Admin, county: str = "") -> Response:
    web = web_of(request)
    names = dict(web.city_counties())
    chosen = _county(user, county, names)
    report = await web.upstream.get(caller_of(user), "registry", "/api/v1/compliance", county=chosen)
    return await render(
        request,
        "compliance.html",
        report=report,
        counties=[(c, names.get(c, c)) for c in user.counties if c in names],
        chosen=chosen,
        grade_labels=GRADE_LABELS,
    )


@router.get("/registry/compliance.csv")
async def compliance_csv(request: Request, user: Admin, county: str = "") -> Response:
    web = web_of(request)
    chosen = _county(user, county, dict(web.city_counties()))
    response = await web.upstream.call(
        caller_of(user), "registry", "GET", "/api/v1/compliance", params={"county": chosen, "format": "csv"}
    )
    return Response(
        response.content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": response.headers.get("content-disposition", "attachment")},
    )
