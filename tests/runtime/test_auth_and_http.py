"""Tokens, role checks and the bilingual HTTP error conventions."""

from __future__ import annotations

from typing import Annotated, ClassVar

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import Role
from tiaojie.runtime.auth import (
    Principal,
    TokenSigner,
    issue_token,
    new_signing_key,
    require_roles,
    signer_for,
    verify_token,
)
from tiaojie.runtime.errors import IllegalTransition
from tiaojie.runtime.http import BodySizeLimit, install_error_handlers
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit


class DeskSettings(RuntimeSettings):
    audience: ClassVar[str | None] = "intake"


SETTINGS = DeskSettings()
SIGNER = signer_for(SETTINGS)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=5)
    count: int


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.settings = SETTINGS
    app.add_middleware(BodySizeLimit, max_bytes=1024)
    install_error_handlers(app)

    @app.post("/desk")
    async def desk(
        body: Body, who: Annotated[Principal, Depends(require_roles(Role.DESK))]
    ) -> dict[str, str]:
        return {"who": who.subject}

    @app.post("/conflict")
    async def conflict() -> None:
        raise IllegalTransition(current="archived", action="accept", current_zh="已归档")

    return app


async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


def bearer(role: Role, **kw: object) -> dict[str, str]:
    return {
        "Authorization": "Bearer "
        + issue_token(SIGNER, subject="u1", role=role, counties=["371302"], audience="intake", **kw)  # type: ignore[arg-type]
    }


def test_token_round_trip() -> None:
    token = issue_token(
        SIGNER, subject="u1", role=Role.MEDIATOR, counties=["371302"], audience="intake", mediator_id="m1"
    )
    principal = verify_token(SETTINGS, token)
    assert (
        principal.role == Role.MEDIATOR and principal.counties == ["371302"] and principal.mediator_id == "m1"
    )


def test_token_signed_with_another_key_is_refused() -> None:
    other = TokenSigner(new_signing_key(), issuer=SETTINGS.jwt_issuer)
    with pytest.raises(jwt.InvalidTokenError):
        verify_token(
            SETTINGS, issue_token(other, subject="u", role=Role.ADMIN, counties=[], audience="intake")
        )


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValueError, match="TIAOJIE_JWT_JWKS"):
        RuntimeSettings(environment="production")


async def test_no_token_is_401_wrong_role_403_right_role_200() -> None:
    body = {"name": "ab", "count": 1}
    assert (await call("POST", "/desk", json=body)).status_code == 401
    forbidden = await call("POST", "/desk", json=body, headers=bearer(Role.CITIZEN))
    assert forbidden.status_code == 403 and forbidden.json()["message_zh"]
    assert (await call("POST", "/desk", json=body, headers=bearer(Role.DESK))).json() == {"who": "u1"}


async def test_expired_token_is_401() -> None:
    headers = bearer(Role.DESK, ttl_seconds=-10)
    response = await call("POST", "/desk", json={"name": "a", "count": 1}, headers=headers)
    assert response.status_code == 401 and response.json()["message_en"] == "access token expired"


async def test_422_lists_fields_in_chinese_and_english_without_values() -> None:
    secret = "13812345678"
    response = await call(
        "POST", "/desk", json={"name": secret, "count": {"$gt": ""}, "x": 1}, headers=bearer(Role.DESK)
    )
    assert response.status_code == 422
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert set(errors) == {"name", "count", "x"}
    assert errors["name"]["message_zh"] == "过长（最多5个字符）"
    assert errors["x"]["code"] == "extra_forbidden"
    assert secret not in response.text


async def test_body_that_is_not_json_is_422() -> None:
    response = await call(
        "POST", "/desk", content=b"{oops", headers={**bearer(Role.DESK), "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["message_zh"] == "请求体不是有效的 JSON"


async def test_oversized_body_is_413() -> None:
    response = await call("POST", "/desk", content=b"x" * 5000, headers=bearer(Role.DESK))
    assert response.status_code == 413 and "KiB" in response.json()["message_zh"]


async def test_illegal_transition_is_409_naming_the_state() -> None:
    response = await call("POST", "/conflict")
    assert response.status_code == 409
    assert response.json()["current_state"] == "archived" and "已归档" in response.json()["message_zh"]
