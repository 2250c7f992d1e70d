"""The mediator's workspace: my cases with their deadlines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tiaojie.console.models import SessionDoc
from tiaojie.console.web import caller_of, render, require, web_of
from tiaojie.contracts.common import Role

router = APIRouter()
Mediator = Annotated[SessionDoc, Depends(require(Role.MEDIATOR))]
OPEN = ("accepted", "assigned", "in_mediation", "transferred", "received")


@router.get("/mediator", response_class=HTMLResponse)
async def my_cases(request: Request, user: Mediator) -> Response:
    cases = await web_of(request).upstream.get(caller_of(user), "intake", "/api/v1/disputes", limit=200)
    open_cases = [c for c in cases if c.get("status") in OPEN]
    # Nearest deadline first: that is the order a mediator works in.
    open_cases.sort(
        key=lambda c: ((c.get("next_deadline") or {}).get("due") or "9999", c.get("received_at", ""))
    )
    closed = [c for c in cases if c.get("status") not in OPEN]
    return await render(request, "mediator.html", open_cases=open_cases, closed=closed)
