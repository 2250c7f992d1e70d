"""Secrets of a docker-compose deployment, generated once on the host that runs it.

`tiaojie deploy secrets --out secrets` writes one file per secret (what docker-compose's
`secrets:` mounts under /run/secrets), never into the repository: the token issuer's
Ed25519 key (the console's alone) and its public key set (what the services get), random
keys for personal data and the console's CSRF tokens, a password per broker principal and
per database user, each service's database URL, and the broker's CA and certificate.
Files already there are kept, so the command is safe to run again (it fills in what a
newer version needs). `rotate_token_key` replaces the issuer's key in three steps.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Literal

from tiaojie.infra.certs import write_certificates
from tiaojie.runtime.access import PROVISIONER, SERVICES
from tiaojie.runtime.auth import jwks_of, new_signing_key

# Services with a database of their own (the console too; it has no broker principal).
DATABASE_USERS = (*SERVICES, "console")
DATABASES = {
    "intake": "tiaojie_intake",
    "referral": "tiaojie_referral",
    "registry": "tiaojie_registry",
    "stats": "tiaojie_stats",
    "library": "tiaojie_library",
    "console": "tiaojie_console",
}


def _write(folder: Path, name: str, value: str) -> bool:
    path = folder / name
    if path.exists():
        return False
    # Readable inside the containers whatever user they run as; the folder (0700) keeps
    # them from other users of the host.
    path.write_text(value)
    path.chmod(0o644)
    return True


def _password() -> str:
    return secrets.token_urlsafe(32)


def write_deployment_secrets(
    folder: Path, *, kafka_host: str = "kafka", mongo_host: str = "mongo"
) -> list[str]:
    """Create the missing secret files; returns the names written."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    signing_key = new_signing_key()
    wanted: dict[str, str] = {
        # The issuer's private key goes to the console only; everyone gets the public set.
        "jwt_signing_key": json.dumps(signing_key),
        "jwt_jwks": jwks_of(signing_key),
        "csrf_key": secrets.token_urlsafe(48),
        "pii_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "match_key": secrets.token_urlsafe(48),
        "kafka_admin_password": _password(),
        "kafka_broker_password": _password(),
        "kafka_controller_password": _password(),
        f"kafka_password_{PROVISIONER}": _password(),
        "mongo_root_password": _password(),
        **{f"kafka_password_{service}": _password() for service in SERVICES},
    }
    if (folder / "jwt_signing_key").exists():
        # An existing issuer key keeps its own key set (the new one would not match it).
        wanted.pop("jwt_jwks")
    written = [name for name, value in wanted.items() if _write(folder, name, value)]
    for service in DATABASE_USERS:
        password_file = f"mongo_password_{service}"
        if _write(folder, password_file, _password()):
            written.append(password_file)
        password = (folder / password_file).read_text()
        database = DATABASES[service]
        url = f"mongodb://{service}:{password}@{mongo_host}:27017/{database}?authSource={database}"
        if _write(folder, f"mongo_url_{service}", url):
            written.append(f"mongo_url_{service}")
    tls = folder / "tls"
    if not (tls / "broker.pem").exists():
        write_certificates(tls, [kafka_host, "localhost"])
        (tls / "broker.pem").chmod(0o644)
        written.append("tls/")
    return written


RotationStep = Literal["add", "switch", "retire"]


def rotate_token_key(folder: Path, step: RotationStep) -> str:
    """One step of replacing the issuer's key (restart what reads the changed files after
    each): `add` a new key to the public set (every service), `switch` the console to it,
    `retire` the old key from the set once the longest token lifetime has passed."""
    current, upcoming, previous = (
        folder / n for n in ("jwt_signing_key", "jwt_signing_key.next", "jwt_signing_key.previous")
    )
    jwks = folder / "jwt_jwks"
    if step == "add":
        if upcoming.exists():
            raise ValueError("a new key is already added: switch to it next")
        key = new_signing_key()
        _write(folder, upcoming.name, json.dumps(key))
        jwks.write_text(jwks_of(json.loads(current.read_text()), key))
        return f"added {key['kid']} to jwt_jwks: restart the services, then switch"
    if step == "switch":
        if not upcoming.exists():
            raise ValueError("no new key to switch to: add one first")
        current.replace(previous)
        upcoming.replace(current)
        return f"the console signs with {json.loads(current.read_text())['kid']}: restart it"
    if not previous.exists():
        raise ValueError("no old key to retire")
    jwks.write_text(jwks_of(json.loads(current.read_text())))
    previous.unlink()
    return "jwt_jwks holds the current key alone: restart the services"
