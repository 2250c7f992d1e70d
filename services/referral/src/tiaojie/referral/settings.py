"""Referral settings (TIAOJIE_* environment variables), with the statutory clocks."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from tiaojie.runtime.settings import KafkaCredentials, KafkaProtocol, ServiceSettings


class ReferralSettings(ServiceSettings):
    # Tokens must name this service (`aud`); not a setting, so no test or deployment can widen it.
    audience: ClassVar[str | None] = "referral"
    service_name: str = "referral"
    port: int = 8002
    database_name: str = "tiaojie_referral"
    # New agency topics are found at the next metadata refresh (pattern subscription).
    kafka_metadata_max_age_ms: int = Field(default=10_000, ge=1000)

    # Response to a referral or transfer: accept or decline within this many working days.
    response_working_days: int = Field(default=1, ge=1)
    # Handling clocks, in calendar days from acceptance (a last day that is not a working
    # day moves to the next working day, as procedural periods do).
    delegation_days: int = Field(default=30, ge=1, description="委派 (court, pre-filing)")
    delegation_extension_max_days: int = Field(default=30, ge=1, description="per agreed extension")
    entrustment_ordinary_days: int = Field(default=15, ge=1, description="委托, ordinary procedure")
    entrustment_simplified_days: int = Field(default=7, ge=1, description="委托, simplified procedure")
    petition_days: int = Field(default=60, ge=1, description="信访工作条例: 60 days")
    petition_extension_days: int = Field(default=30, ge=1, description="信访: extendable once")
    police_days: int = Field(default=30, ge=1, description="警调: configurable default")
    hotline_days: int = Field(default=15, ge=1, description="12345: configurable default")
    government_days: int = Field(default=30, ge=1, description="other departments")
    mediation_days: int = Field(default=30, ge=1, description="mediation from acceptance (交办)")
    mediation_extension_max_days: int = Field(default=30, ge=1)
    # 催办: a reminder when this share of the time is used.
    reminder_share: float = Field(default=0.8, gt=0, lt=1)
    # How often each replica looks for due timers; each fires once across replicas.
    timer_interval: float = Field(default=30.0, gt=0)

    # Agencies get their broker credential and ACLs at registration, through a principal of
    # the service's own that may create them (ALTER on the cluster: Kafka has no narrower
    # right for it). The data-plane principal (TIAOJIE_KAFKA_USERNAME) never holds it.
    kafka_provisioner_username: str | None = None
    kafka_provisioner_password: SecretStr | None = None
    # What agencies are told to connect to (their network may name the broker otherwise);
    # the service's own bootstrap and protocol when unset.
    agency_kafka_bootstrap: str | None = None
    agency_kafka_security_protocol: KafkaProtocol | None = None

    @model_validator(mode="after")
    def _provisioner_in_production(self) -> ReferralSettings:
        if self.environment == "production" and not (
            self.kafka_provisioner_username and self.kafka_provisioner_password
        ):
            raise ValueError(
                "production requires TIAOJIE_KAFKA_PROVISIONER_USERNAME and "
                "TIAOJIE_KAFKA_PROVISIONER_PASSWORD (agencies get their broker credentials)"
            )
        return self

    def provisioner_credentials(self) -> KafkaCredentials | None:
        if not (self.kafka_provisioner_username and self.kafka_provisioner_password):
            return None
        return self.kafka_credentials().as_user(
            self.kafka_provisioner_username, self.kafka_provisioner_password.get_secret_value()
        )
