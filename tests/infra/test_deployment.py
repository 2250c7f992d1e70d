"""The docker-compose deployment, checked without a Docker engine: its secrets are
generated outside the repository, every service reads them as files, production mode
accepts what is generated, and neither the broker nor the database is published."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tiaojie.infra.deploy import write_deployment_secrets
from tiaojie.runtime.access import SERVICES
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    written = write_deployment_secrets(folder)
    assert {"jwt_signing_key", "jwt_jwks", "csrf_key", "tls/"} <= set(written)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert write_deployment_secrets(folder) == []
    assert before == {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert folder.stat().st_mode & 0o077 == 0


def test_every_secret_the_compose_file_names_is_generated(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    write_deployment_secrets(folder)
    for name, spec in COMPOSE["secrets"].items():
        path = ROOT / spec["file"]
        relative = path.relative_to(ROOT / "secrets")
        assert (folder / relative).exists(), name


def test_no_broker_or_database_port_reaches_the_host() -> None:
    for name in ("kafka", "mongo"):
        assert "ports" not in COMPOSE["services"][name], name


@pytest.mark.parametrize("service", [*SERVICES, "console"])
def test_each_service_starts_in_production_from_its_secret_files(service: str, tmp_path: Path) -> None:
    """The files a service's container sees under /run/secrets, read as it reads them."""
    generated = tmp_path / "secrets"
    write_deployment_secrets(generated)
    spec = COMPOSE["services"][service]
    mounted = tmp_path / "run-secrets"
    mounted.mkdir()
    for entry in spec["secrets"]:
        source, target = (entry, entry) if isinstance(entry, str) else (entry["source"], entry["target"])
        file = ROOT / COMPOSE["secrets"][source]["file"]
        shutil.copy(generated / file.relative_to(ROOT / "secrets"), mounted / target)
    env = {**COMPOSE["x-service"]["environment"], **spec["environment"]}
    assert env["TIAOJIE_ENVIRONMENT"] == "production"
    fields = {
        k.removeprefix("TIAOJIE_").lower(): str(v)
        for k, v in env.items()
        if k.startswith("TIAOJIE_") and k not in ("TIAOJIE_SECRETS_DIR",)
    }
    fields["kafka_ca_file"] = str(mounted / "ca.pem")
    from tiaojie.console.settings import ConsoleSettings
    from tiaojie.referral.settings import ReferralSettings

    cls = {"console": ConsoleSettings, "referral": ReferralSettings}.get(service, RuntimeSettings)
    settings = cls(_secrets_dir=mounted, **fields)  # type: ignore[call-arg]
    assert settings.environment == "production"
    assert "@" in settings.mongo_url
