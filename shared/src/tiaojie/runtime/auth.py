"""Bearer JWT authentication: tokens signed by one issuer (EdDSA), verified by public keys.

One issuer holds the private key: the console, which signs people in, and `tiaojie token`
in development. Every other process holds only the issuer's public key set (a JWKS, by
value, from a file or fetched from a URL such as an OIDC provider's `jwks_uri`), so no
service's configuration lets anyone mint a token. Every token names its audience (the
service it is for) and a service accepts only tokens that name it. A principal's counties
scope every query (a county's users never see another county's cases).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import OKPAlgorithm
from pydantic import BaseModel, Field

from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import DEV_TOKEN_KID_PREFIX, RuntimeSettings, json_or_file

ALGORITHM = "EdDSA"
# The audiences a token may name: the services that take bearer tokens.
SERVICE_AUDIENCES = ("intake", "referral", "registry", "stats", "library")
_bearer = HTTPBearer(auto_error=False, description="Tiaojie access token (JWT)")


class UnknownSigningKey(jwt.InvalidTokenError):
    """The token's key id is not in the issuer's public key set (or it has none)."""


class KeysUnavailable(jwt.InvalidTokenError):
    """The issuer's key set could not be fetched."""


class NoSigningKey(RuntimeError):
    """This process holds no private key: only the issuer can mint tokens."""


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


# -- keys ---------------------------------------------------------------------------------------
def new_signing_key(kid_prefix: str = "tiaojie-") -> dict[str, Any]:
    """A fresh Ed25519 private key as a JWK, its key id dated so rotations read in order."""
    key = Ed25519PrivateKey.generate()
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(key, as_dict=True)
    kid = f"{kid_prefix}{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """The public half of a JWK (what a JWKS may publish)."""
    return {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "k")}


def jwks_of(*keys: Mapping[str, Any]) -> str:
    """A JWKS document of these keys' public halves."""
    return json.dumps({"keys": [public_jwk(k) for k in keys]})


def development_key(settings: RuntimeSettings) -> dict[str, Any]:
    """The development issuer's key, generated once under the data folder and then kept,
    so `tiaojie up`, `tiaojie token` and the tests agree on it from a fresh clone."""
    path = settings.development_token_key_path.resolve()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(new_signing_key(DEV_TOKEN_KID_PREFIX), out)
            # A hard link fails if another process got there first: exactly one key wins.
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return dict(json.loads(path.read_text()))


def published_jwks(settings: RuntimeSettings) -> dict[str, Any]:
    """The issuer's public key set as it publishes it: the configured JWKS (both keys during
    a rotation), else its signing key's public half."""
    if settings.jwt_jwks:
        return {"keys": [public_jwk(k) for k in json_or_file(settings.jwt_jwks)["keys"]]}
    return {"keys": [signer_for(settings).public]}


def _uses_development_key(settings: RuntimeSettings) -> bool:
    configured = settings.jwt_jwks or settings.jwt_jwks_url or settings.jwt_signing_key
    return settings.environment == "development" and not configured


# -- signing ------------------------------------------------------------------------------------
class TokenSigner:
    """The issuer's private key: the only thing that mints tokens."""

    def __init__(self, private_jwk: Mapping[str, Any], *, issuer: str) -> None:
        if "d" not in private_jwk or not private_jwk.get("kid"):
            raise NoSigningKey("a signing key needs its private part and a kid")
        key = OKPAlgorithm.from_jwk(dict(private_jwk))
        if not isinstance(key, Ed25519PrivateKey):
            raise NoSigningKey("the signing key must be an Ed25519 private key")
        self._key = key
        self.kid = str(private_jwk["kid"])
        self.issuer = issuer
        self.public = public_jwk(private_jwk)

    def sign(self, payload: Mapping[str, Any]) -> str:
        return jwt.encode(dict(payload), self._key, algorithm=ALGORITHM, headers={"kid": self.kid})


def signer_for(settings: RuntimeSettings) -> TokenSigner:
    """The issuer's signer from settings (TIAOJIE_JWT_SIGNING_KEY, or the development key
    when no key of any kind is configured); NoSigningKey for a process without one."""
    if settings.jwt_signing_key is not None:
        return TokenSigner(
            json_or_file(settings.jwt_signing_key.get_secret_value()), issuer=settings.jwt_issuer
        )
    if _uses_development_key(settings):
        return TokenSigner(development_key(settings), issuer=settings.jwt_issuer)
    raise NoSigningKey("this process holds no signing key: only the issuer mints tokens")


def issue_token(
    signer: TokenSigner,
    *,
    subject: str,
    role: Role | str,
    counties: Sequence[str],
    audience: str | Sequence[str],
    ttl_seconds: int = 8 * 3600,
    **claims: Any,
) -> str:
    """Sign a token for a principal, for one service (or several, in development)."""
    audiences = [audience] if isinstance(audience, str) else list(audience)
    unknown = set(audiences) - set(SERVICE_AUDIENCES)
    if not audiences or unknown:
        raise ValueError(f"unknown audience {sorted(unknown)}; one of {', '.join(SERVICE_AUDIENCES)}")
    now = int(time.time())
    payload = {
        "iss": signer.issuer,
        "sub": subject,
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "role": str(Role(role)),
        "counties": list(counties),
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        **{k: v for k, v in claims.items() if v is not None},
    }
    return signer.sign(payload)


# -- verifying ----------------------------------------------------------------------------------
class TokenVerifier:
    """The issuer's public keys, by key id: given, or fetched (and cached) from a URL."""

    def __init__(
        self,
        *,
        issuer: str,
        algorithms: Sequence[str],
        keys: Sequence[Mapping[str, Any]] = (),
        url: str | None = None,
        cache_seconds: float = 300,
    ) -> None:
        self.issuer = issuer
        self.algorithms = list(algorithms)
        self._keys: dict[str, jwt.PyJWK] = {}
        for data in keys:
            if "d" in data or data.get("kty") == "oct":
                # A key set holding private or symmetric keys is a leak, not a configuration.
                raise ValueError("a JWKS for verification must hold public keys only")
            key = jwt.PyJWK.from_dict(dict(data))
            if key.key_id is None or key.algorithm_name not in self.algorithms:
                raise ValueError(f"JWKS key {key.key_id!r}: needs a kid and one of {self.algorithms}")
            self._keys[key.key_id] = key
        self._client = jwt.PyJWKClient(url, lifespan=cache_seconds, timeout=5) if url else None

    @property
    def remote(self) -> bool:
        return self._client is not None

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def key_for(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str):
            raise UnknownSigningKey("token names no key id")
        if self._client is not None:
            try:
                return self._client.get_signing_key(kid)
            except jwt.PyJWKClientConnectionError as exc:
                raise KeysUnavailable("the issuer's key set cannot be fetched") from exc
            except jwt.PyJWKClientError as exc:
                raise UnknownSigningKey("unknown key id") from exc
        if kid not in self._keys:
            raise UnknownSigningKey("unknown key id")
        return self._keys[kid]

    def verify(self, token: str, *, audience: str) -> Principal:
        """Signature, key, issuer, audience and expiry; raises jwt.InvalidTokenError."""
        key = self.key_for(token)
        if key.algorithm_name not in self.algorithms:
            raise UnknownSigningKey("the key's algorithm is not accepted")
        claims = jwt.decode(
            token,
            key,
            algorithms=self.algorithms,
            issuer=self.issuer,
            audience=audience,
            options={"require": ["exp", "iss", "sub", "aud"]},
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


@functools.lru_cache(maxsize=32)
def _verifier(
    issuer: str, algorithms: tuple[str, ...], jwks: str | None, url: str | None, cache: float
) -> TokenVerifier:
    keys = json_or_file(jwks)["keys"] if jwks else []
    return TokenVerifier(issuer=issuer, algorithms=algorithms, keys=keys, url=url, cache_seconds=cache)


def verifier_for(settings: RuntimeSettings) -> TokenVerifier:
    """The verifier these settings name (one per distinct configuration, kept for reuse)."""
    jwks = settings.jwt_jwks
    if not jwks and not settings.jwt_jwks_url:
        if settings.jwt_signing_key is not None:
            jwks = jwks_of(signer_for(settings).public)
        elif _uses_development_key(settings):
            jwks = jwks_of(development_key(settings))
    return _verifier(
        settings.jwt_issuer,
        tuple(settings.jwt_algorithms),
        jwks,
        settings.jwt_jwks_url,
        float(settings.jwt_jwks_cache_seconds),
    )


def verify_token(settings: RuntimeSettings, token: str, *, audience: str | None = None) -> Principal:
    """Verify a token meant for this service (settings.audience unless given); raises
    jwt.InvalidTokenError, or ValueError for a process that accepts no tokens."""
    aud = audience or settings.audience
    if aud is None:
        raise ValueError("this process names no audience: it accepts no tokens")
    return verifier_for(settings).verify(token, audience=aud)


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
        if verifier_for(settings).remote:
            # A key-set fetch is blocking I/O: keep it off the event loop.
            return await asyncio.to_thread(verify_token, settings, credentials.credentials)
        return verify_token(settings, credentials.credentials)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("访问令牌已过期", "access token expired") from None
    except KeysUnavailable:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail={
                "code": "keys_unavailable",
                "message_zh": "暂时无法验证访问令牌，请稍后再试",
                "message_en": "the token issuer's keys are unavailable; try again later",
            },
        ) from None
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
