"""Bearer JWT authentication (PyJWT, HS256) with roles and counties.

Every service verifies tokens with the shared key from settings. A principal's counties
scope every query (a county's users never see another county's cases).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import RuntimeSettings

ALGORITHM = "HS256"
_bearer = HTTPBearer(auto_error=False, description="Tiaojie access token (JWT)")


class Principal(BaseModel):
    """Who is calling: from a verified token."""

    subject: str
    role: Role
    counties: list[str] = Field(default_factory=list)
    name: str | None = None
    mediator_id: str | None = None
    organisation_id: str | None = None
    agency_id: str | None = None

    def may_see_county(self, county: str | None) -> bool:
        """True if this principal's scope includes the county."""
        return county is not None and county in self.counties


def issue_token(
    settings: RuntimeSettings,
    *,
    subject: str,
    role: Role | str,
    counties: Sequence[str],
    ttl_seconds: int = 8 * 3600,
    **claims: Any,
) -> str:
    """Sign a token for a principal (development CLI, console sessions, tests)."""
    now = int(time.time())
    payload = {
        "iss": settings.jwt_issuer,
        "sub": subject,
        "role": str(Role(role)),
        "counties": list(counties),
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        **{k: v for k, v in claims.items() if v is not None},
    }
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def verify_token(settings: RuntimeSettings, token: str) -> Principal:
    """Verify signature, issuer and expiry; raises jwt.InvalidTokenError."""
    claims = jwt.decode(
        token,
        settings.jwt_secret.get_secret_value(),
        algorithms=[ALGORITHM],
        issuer=settings.jwt_issuer,
        options={"require": ["exp", "iss", "sub"]},
    )
    return Principal(
        subject=claims["sub"],
        role=Role(claims["role"]),
        counties=list(claims.get("counties") or []),
        name=claims.get("name"),
        mediator_id=claims.get("mediator_id"),
        organisation_id=claims.get("organisation_id"),
        agency_id=claims.get("agency_id"),
    )


def _unauthorized(zh: str, en: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail={"code": "unauthorized", "message_zh": zh, "message_en": en},
        headers={"WWW-Authenticate": "Bearer"},
    )


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the verified caller, or 401."""
    if credentials is None:
        raise _unauthorized("需要登录（缺少访问令牌）", "authentication required (no bearer token)")
    settings: RuntimeSettings = request.app.state.settings
    try:
        return verify_token(settings, credentials.credentials)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("访问令牌已过期", "access token expired") from None
    except (jwt.InvalidTokenError, ValueError, KeyError):
        raise _unauthorized("访问令牌无效", "invalid access token") from None


def require_roles(*roles: Role) -> Callable[..., Any]:
    """FastAPI dependency factory: the caller, if their role is one of these, else 403."""
    allowed = frozenset(roles)

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail={
                    "code": "forbidden",
                    "message_zh": "当前角色无权执行此操作",
                    "message_en": f"role {principal.role} may not do this",
                    "allowed_roles": sorted(allowed),
                },
            )
        return principal

    return dependency
