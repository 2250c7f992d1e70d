"""The error responses every route documents, from what the route reads and requires."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from tiaojie.runtime.http import THROTTLED, document_errors

pytestmark = pytest.mark.unit


class Body(BaseModel):
    n: int


def test_each_route_lists_the_errors_it_can_give() -> None:
    app = FastAPI()
    bearer = HTTPBearer()

    @app.get("/api/v1/things/{thing_id}", dependencies=[Depends(bearer)])
    async def read(thing_id: str) -> dict[str, str]:
        return {}

    @app.post("/api/v1/things", openapi_extra={THROTTLED: True})
    async def create(body: Body) -> dict[str, str]:
        return {}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {}

    document_errors(app)
    paths = app.openapi()["paths"]
    read_codes = set(paths["/api/v1/things/{thing_id}"]["get"]["responses"])
    assert read_codes == {"200", "401", "403", "404", "422"}
    created = paths["/api/v1/things"]["post"]
    assert set(created["responses"]) == {"200", "409", "413", "422", "429"}
    assert THROTTLED not in created  # a marker for us, not for readers of the document
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}
    error = created["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    assert "HTTPValidationError" not in app.openapi()["components"]["schemas"]
