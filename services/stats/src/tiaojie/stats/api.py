"""Stats' HTTP routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tiaojie.contracts.common import Role
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.stats.service import StatsService

router = APIRouter(prefix="/api/v1", tags=["statistics"])


def get_service(request: Request) -> StatsService:
    return request.app.state.stats


Service = Annotated[StatsService, Depends(get_service)]
Viewer = Annotated[Principal, Depends(require_roles(Role.BUREAU, Role.CENTER, Role.ADMIN))]


@router.get("/summary", summary="Figures over the caller's counties")
async def summary(
    principal: Viewer, service: Service, county: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None
) -> dict[str, Any]:
    counties = [c for c in principal.counties if county in (None, c)]
    if not counties:
        return {"counties": [], "received": 0, "assigned": 0}
    return await service.summary(counties=counties)
