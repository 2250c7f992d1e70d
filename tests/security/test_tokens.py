"""Tokens as an intruder meets them: whoever holds a service's configuration cannot mint,
a token for one service opens no other, a stranger's key signs nothing, a rotation keeps
the old key only as long as it is published, production refuses the development key.

Against the session's mesh (service processes holding only the public key set) where the
running service matters, against each service's production settings (built from the
files `tiaojie deploy secrets` writes, mounted as docker-compose mounts them) elsewhere.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from devkit.mesh import Mesh
from tests.support.data import COUNTY, auth
from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = [
    pytest.mark.security,
    pytest.mark.timeout(300),
    # The forgeries use whatever a configuration holds, short values too.
    pytest.mark.filterwarnings("ignore:The HMAC key is"),
]
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = ("intake", "referral", "registry", "stats", "library")
# A route of each service that any administrator of COUNTY may read.
PROBES = {
    "intake": "/api/v1/disputes",
    "referral": "/api/v1/agencies",
    "registry": f"/api/v1/organisations?county={COUNTY}",
    "stats": "/api/v1/summary",
    "library": "/api/v1/entries",
}
# What every service's configuration held before tokens were asymmetric (its default).
OLD_SHARED_SECRET = "tiaojie-development-jwt-secret-not-for-production"


def service_settings_class(service: str) -> type[RuntimeSettings]:
    from tiaojie.intake.settings import IntakeSettings
    from tiaojie.library.settings import LibrarySettings
    from tiaojie.referral.settings import ReferralSettings
    from tiaojie.registry.settings import RegistrySettings
    from tiaojie.stats.settings import StatsSettings

    classes: dict[str, type[RuntimeSettings]] = {
        "intake": IntakeSettings,
        "referral": ReferralSettings,
        "registry": RegistrySettings,
        "stats": StatsSettings,
        "library": LibrarySettings,
    }
    return classes[service]


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "tiaojie", "sub": "intruder", "role": "admin", "counties": [COUNTY], "iat": now,
            "exp": now + 600, **extra}  # fmt: skip


def forgeries(secret: str) -> Iterator[str]:
    """HS256 tokens signed with a value, with and without an audience (the old verifier
    refused any audience it was not told of, so an intruder would leave it out)."""
    for payload in (claims(), claims(aud=list(SERVICES))):
        try:
            yield jwt.encode(payload, secret, algorithm="HS256")
        except jwt.InvalidKeyError:  # PyJWT will not take a PEM (the CA) as an HMAC secret
            return


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiaojie.infra.deploy import write_deployment_secrets

    folder = tmp_path_factory.mktemp("deploy") / "secrets"
    write_deployment_secrets(folder)
    return folder


def mounted(generated: Path, service: str, into: Path) -> dict[str, str]:
    """The files a service's container sees under /run/secrets (name -> content)."""
    into.mkdir(parents=True, exist_ok=True)
    files = {}
    for entry in COMPOSE["services"][service]["secrets"]:
        source, target = (entry, entry) if isinstance(entry, str) else (entry["source"], entry["target"])
        file = ROOT / COMPOSE["secrets"][source]["file"]
        shutil.copy(generated / file.relative_to(ROOT / "secrets"), into / target)
        files[target] = (into / target).read_text()
    return files


def production_settings(generated: Path, service: str, into: Path) -> tuple[RuntimeSettings, dict[str, str]]:
    """A service's settings as its container reads them in production."""
    files = mounted(generated, service, into)
    spec = COMPOSE["services"][service]
    env = {**COMPOSE["x-service"]["environment"], **spec["environment"]}
    fields: dict[str, Any] = {
        k.removeprefix("TIAOJIE_").lower(): str(v)
        for k, v in env.items()
        if k.startswith("TIAOJIE_") and k != "TIAOJIE_SECRETS_DIR"
    }
    fields["kafka_ca_file"] = str(into / "ca.pem")
    if service == "console":
        from tiaojie.console.settings import ConsoleSettings

        cls: type[RuntimeSettings] = ConsoleSettings
    else:
        cls = service_settings_class(service)
    return cls(_secrets_dir=into, **fields), files


async def captured_console_tokens(settings: RuntimeSettings) -> dict[str, str]:
    """The bearer token the console sends to each service for one signed-in administrator."""
    from tiaojie.console.metrics import ConsoleMetrics
    from tiaojie.console.settings import ConsoleSettings
    from tiaojie.console.upstream import Caller, Upstream
    from tiaojie.runtime.metrics import new_registry

    seen: dict[str, str] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(200, json={})

    urls: dict[str, Any] = {f"{s}_url": f"http://{s}" for s in SERVICES}
    console = ConsoleSettings(data_dir=settings.data_dir, **urls)
    upstream = Upstream(console, ConsoleMetrics(new_registry()))
    await upstream.client.aclose()
    upstream.client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    caller = Caller(subject="admin-1", role=Role.ADMIN, counties=(COUNTY,))
    for service in SERVICES:
        await upstream.get(caller, service, "/anything")
    await upstream.close()
    return seen


async def probe(client: httpx.AsyncClient, mesh: Mesh, service: str, token: str) -> int:
    response = await client.get(
        mesh.url(service) + PROBES[service], headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code


# -- HS256 with what a service's configuration holds ---------------------------------------------
async def test_hs256_signed_with_any_value_of_a_services_configuration_is_refused_by_every_service(
    mesh: Mesh, settings: RuntimeSettings
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for service in SERVICES:
            control = auth(settings, Role.ADMIN)["Authorization"].removeprefix("Bearer ")
            assert await probe(client, mesh, service, control) == 200, service
            values = {OLD_SHARED_SECRET, *mesh.services[f"{service}-0"].env.values()}
            for value in values:
                for forged in forgeries(value):
                    assert await probe(client, mesh, service, forged) == 401, (service, value[:12])


def test_hs256_signed_with_any_deployment_secret_file_is_refused(deployed: Path, tmp_path: Path) -> None:
    from tiaojie.runtime.auth import verify_token

    for service in SERVICES:
        service_settings, files = production_settings(deployed, service, tmp_path / service)
        for value in files.values():
            for forged in forgeries(value):
                with pytest.raises((jwt.InvalidTokenError, ValueError)):
                    verify_token(service_settings, forged)


def test_a_service_holds_no_key_that_mints(deployed: Path, tmp_path: Path) -> None:
    from tiaojie.runtime.auth import NoSigningKey, signer_for

    for service in SERVICES:
        service_settings, files = production_settings(deployed, service, tmp_path / service)
        assert service_settings.jwt_signing_key is None
        assert not any('"d"' in value for value in files.values()), service  # no private JWK
        with pytest.raises(NoSigningKey):
            signer_for(service_settings)
    console, _ = production_settings(deployed, "console", tmp_path / "console")
    assert signer_for(console).kid  # the issuer is the one process that signs


def test_the_mesh_gives_a_service_only_public_keys(mesh: Mesh) -> None:
    from tiaojie.runtime.auth import NoSigningKey, signer_for

    for service in SERVICES:
        env = mesh.services[f"{service}-0"].env
        assert "TIAOJIE_JWT_SIGNING_KEY" not in env
        assert all("d" not in key for key in json.loads(env["TIAOJIE_JWT_JWKS"])["keys"])
        with pytest.raises(NoSigningKey):
            signer_for(service_settings_class(service)(jwt_jwks=env["TIAOJIE_JWT_JWKS"]))


# -- audiences -----------------------------------------------------------------------------------
async def test_a_token_the_console_made_for_one_service_is_refused_by_every_other(
    mesh: Mesh, settings: RuntimeSettings
) -> None:
    tokens = await captured_console_tokens(settings)
    async with httpx.AsyncClient(timeout=30) as client:
        for meant_for, token in tokens.items():
            for service in SERVICES:
                expected = 200 if service == meant_for else 401
                assert await probe(client, mesh, service, token) == expected, (meant_for, service)


async def test_the_consoles_tokens_name_one_service_and_expire_within_minutes(
    settings: RuntimeSettings,
) -> None:
    tokens = await captured_console_tokens(settings)
    assert set(tokens) == set(SERVICES)
    for service, token in tokens.items():
        seen = jwt.decode(token, options={"verify_signature": False})
        assert seen.get("aud") == service
        assert 0 < seen["exp"] - seen["iat"] <= 120, service


# -- keys ----------------------------------------------------------------------------------------
async def test_a_token_signed_by_an_unknown_ed25519_key_is_refused(
    mesh: Mesh, settings: RuntimeSettings
) -> None:
    from tiaojie.runtime.auth import development_key

    stranger = Ed25519PrivateKey.generate()
    real_kid = development_key(settings)["kid"]
    async with httpx.AsyncClient(timeout=30) as client:
        for service in SERVICES:
            for kid in (real_kid, "someone-elses-key", None):
                headers = {"kid": kid} if kid else None
                forged = jwt.encode(claims(aud=service), stranger, algorithm="EdDSA", headers=headers)
                assert await probe(client, mesh, service, forged) == 401, (service, kid)


def test_the_old_key_works_while_both_are_published_and_stops_when_it_is_removed(tmp_path: Path) -> None:
    from tiaojie.console.settings import ConsoleSettings
    from tiaojie.infra.deploy import rotate_token_key, write_deployment_secrets
    from tiaojie.runtime.auth import UnknownSigningKey, issue_token, published_jwks, signer_for, verify_token

    folder = tmp_path / "secrets"
    write_deployment_secrets(folder)

    def issuer() -> ConsoleSettings:
        return ConsoleSettings(
            jwt_signing_key=(folder / "jwt_signing_key").read_text(),
            jwt_jwks=(folder / "jwt_jwks").read_text(),
        )

    def intake_accepts(token: str) -> bool:
        intake = service_settings_class("intake")(jwt_jwks=(folder / "jwt_jwks").read_text())
        try:
            return verify_token(intake, token).role == Role.DESK
        except UnknownSigningKey:
            return False

    def mint() -> str:
        return issue_token(
            signer_for(issuer()), subject="d", role=Role.DESK, counties=[COUNTY], audience="intake"
        )

    old = mint()
    rotate_token_key(folder, "add")
    assert len(published_jwks(issuer())["keys"]) == 2  # the console publishes both
    assert intake_accepts(old)
    rotate_token_key(folder, "switch")
    new = mint()
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert intake_accepts(old) and intake_accepts(new)  # both keys published: both work
    rotate_token_key(folder, "retire")
    assert intake_accepts(new)
    assert not intake_accepts(old)


def test_services_can_take_the_issuers_keys_from_its_jwks_url(mesh: Mesh, settings: RuntimeSettings) -> None:
    """As with a bureau's OIDC provider: the key set fetched from a URL (the console's own)."""
    from tiaojie.runtime.auth import TokenVerifier, UnknownSigningKey

    verifier = TokenVerifier(
        issuer=settings.jwt_issuer, algorithms=["EdDSA"], url=mesh.url("console") + "/.well-known/jwks.json"
    )
    token = auth(settings, Role.BUREAU)["Authorization"].removeprefix("Bearer ")
    assert verifier.verify(token, audience="stats").role == Role.BUREAU
    forged = jwt.encode(
        claims(aud="stats"), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "nobody"}
    )
    with pytest.raises(UnknownSigningKey):
        verifier.verify(forged, audience="stats")


# -- production ----------------------------------------------------------------------------------
def test_production_refuses_the_development_key(
    deployed: Path, tmp_path: Path, settings: RuntimeSettings
) -> None:
    from tiaojie.runtime.auth import development_key, jwks_of

    dev = development_key(settings)
    for service in (*SERVICES, "console"):
        good, _ = production_settings(deployed, service, tmp_path / service)
        with pytest.raises(ValueError, match="development token key"):
            type(good)(**{**_fields_of(good), "jwt_jwks": jwks_of(dev)})
    console, _ = production_settings(deployed, "console", tmp_path / "console-signer")
    with pytest.raises(ValueError, match="development token key"):
        type(console)(**{**_fields_of(console), "jwt_signing_key": json.dumps(dev)})
    # With no key configured, production has no development key to fall back to.
    bare = _fields_of(console)
    bare.pop("jwt_jwks")
    with pytest.raises(ValueError, match="TIAOJIE_JWT_JWKS"):
        type(console)(**bare)


def test_the_cli_mints_for_every_service_in_development_only(
    deployed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiaojie.infra.cli import app

    intake, _ = production_settings(deployed, "intake", tmp_path / "intake")
    given = _fields_of(intake)
    names = ("environment", "kafka_security_protocol", "kafka_username", "kafka_password", "kafka_ca_file",
             "mongo_url", "jwt_jwks", "pii_key", "match_key")  # fmt: skip
    for name in names:
        monkeypatch.setenv(f"TIAOJIE_{name.upper()}", str(given[name]))
    # The operator holds the issuer's key.
    monkeypatch.setenv("TIAOJIE_JWT_SIGNING_KEY", (deployed / "jwt_signing_key").read_text())
    every = CliRunner().invoke(app, ["token", "--role", "admin", "--county", COUNTY])
    assert every.exit_code != 0 and "audience" in every.output
    one = CliRunner().invoke(app, ["token", "--role", "admin", "--county", COUNTY, "--audience", "registry"])
    assert one.exit_code == 0, one.output
    assert jwt.decode(one.output.strip(), options={"verify_signature": False})["aud"] == "registry"


def _fields_of(s: RuntimeSettings) -> dict[str, Any]:
    """Settings as constructor arguments (secrets in clear)."""
    out: dict[str, Any] = {}
    for name in type(s).model_fields:
        value = getattr(s, name)
        if value is None:
            continue
        out[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return out


def test_services_started_by_tiaojie_up_hold_only_the_public_keys(tmp_path: Path) -> None:
    """`tiaojie up` gives each service process the public key set and only the console the
    issuer's key: a service's environment mints nothing."""
    from tiaojie.infra.paths import Layout
    from tiaojie.infra.stack import SERVICES as SPECS
    from tiaojie.infra.stack import Infra, service_env

    infra = Infra(Layout(root=tmp_path, data=tmp_path / "data", cache=tmp_path / "cache"))
    for spec in SPECS:
        env = service_env(infra, spec, 0, deployment=None)
        jwks = json.loads(env["TIAOJIE_JWT_JWKS"])
        assert jwks["keys"] and all("d" not in k for k in jwks["keys"]), spec.name
        assert ("TIAOJIE_JWT_SIGNING_KEY" in env) == (spec.name == "console"), spec.name
        assert not any("SECRET" in name for name in env), spec.name
