"""Production mode refuses to start with anything a development deployment leaves open:
development keys, a broker without TLS or without credentials, a database without a
password, referral without its provisioning principal, console demo accounts."""

from __future__ import annotations

import json

import pytest

from tiaojie.console.settings import ConsoleSettings
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.auth import jwks_of, new_signing_key
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit

ISSUER_KEY = new_signing_key()
DEV_KEY = new_signing_key("tiaojie-dev-")
KEYS = {
    "jwt_jwks": jwks_of(ISSUER_KEY),
    "pii_key": "cHJvZHVjdGlvbi1waWkta2V5LTMyLWJ5dGVzLWxvbmc=",
    "match_key": "m" * 40,
}
SAFE = {
    **KEYS,
    "kafka_security_protocol": "SASL_SSL",
    "kafka_username": "tiaojie-intake",
    "kafka_password": "p" * 32,
    "mongo_url": "mongodb://intake:secret@mongo:27017/tiaojie_intake?authSource=tiaojie_intake",
}


def production(cls: type[RuntimeSettings] = RuntimeSettings, **fields: object) -> RuntimeSettings:
    return cls(environment="production", **fields)  # type: ignore[arg-type]


def test_a_complete_production_configuration_is_accepted() -> None:
    assert production(**SAFE).kafka_security_protocol == "SASL_SSL"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"kafka_security_protocol": "PLAINTEXT"}, "SASL_SSL"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "SASL_SSL"),
        ({"kafka_username": None}, "TIAOJIE_KAFKA_USERNAME"),
        ({"kafka_password": None}, "TIAOJIE_KAFKA_PASSWORD"),
        ({"mongo_url": "mongodb://mongo:27017/"}, "TIAOJIE_MONGO_URL"),
        ({"jwt_jwks": None}, "TIAOJIE_JWT_JWKS"),
        ({"jwt_jwks": jwks_of(DEV_KEY)}, "development token key"),
        ({"jwt_jwks": jwks_of(ISSUER_KEY, DEV_KEY)}, "development token key"),
    ],
)
def test_production_refuses_what_development_leaves_open(change: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        production(**{**SAFE, **change})


def test_referral_in_production_needs_its_provisioning_principal() -> None:
    with pytest.raises(ValueError, match="TIAOJIE_KAFKA_PROVISIONER_USERNAME"):
        production(ReferralSettings, **SAFE)
    ok = production(
        ReferralSettings, **SAFE, kafka_provisioner_username="prov", kafka_provisioner_password="q" * 32
    )
    assert ok.provisioner_credentials() is not None  # type: ignore[attr-defined]


def test_the_console_refuses_demo_accounts_but_needs_no_broker() -> None:
    console = {
        **KEYS,
        "jwt_signing_key": json.dumps(ISSUER_KEY),
        "csrf_key": "c" * 40,
        "mongo_url": SAFE["mongo_url"],
    }
    with pytest.raises(ValueError, match="demo accounts"):
        production(ConsoleSettings, **console)
    assert production(ConsoleSettings, **console, demo_accounts=False)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"jwt_signing_key": None}, "TIAOJIE_JWT_SIGNING_KEY"),
        ({"jwt_signing_key": json.dumps(DEV_KEY)}, "development token key"),
        ({"csrf_key": None}, "TIAOJIE_CSRF_KEY"),
    ],
)
def test_the_console_in_production_needs_its_own_issuer_and_csrf_keys(
    change: dict[str, object], named: str
) -> None:
    console = {
        **KEYS,
        "jwt_signing_key": json.dumps(ISSUER_KEY),
        "csrf_key": "c" * 40,
        "mongo_url": SAFE["mongo_url"],
        "demo_accounts": False,
    }
    fields = {k: v for k, v in {**console, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=named):
        production(ConsoleSettings, **fields)
