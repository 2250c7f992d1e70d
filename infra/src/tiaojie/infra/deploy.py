"""Secrets of a docker-compose deployment, generated once on the host that runs it.

`tiaojie deploy secrets --out secrets` writes one file per secret (what docker-compose's
`secrets:` mounts under /run/secrets), never into the repository: random keys for tokens
and personal data, a password per broker principal and per database user, each service's
database URL, and the broker's CA and certificate. Files already there are kept, so the
command is safe to run again (it fills in what a newer version needs).
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from tiaojie.infra.certs import write_certificates
from tiaojie.runtime.access import PROVISIONER, SERVICES

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
    wanted: dict[str, str] = {
        "jwt_secret": secrets.token_urlsafe(48),
        "pii_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "match_key": secrets.token_urlsafe(48),
        "kafka_admin_password": _password(),
        "kafka_broker_password": _password(),
        "kafka_controller_password": _password(),
        f"kafka_password_{PROVISIONER}": _password(),
        "mongo_root_password": _password(),
        **{f"kafka_password_{service}": _password() for service in SERVICES},
    }
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
