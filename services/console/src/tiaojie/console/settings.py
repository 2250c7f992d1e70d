"""Console settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator

from tiaojie.runtime.settings import ServiceSettings

DEV_CSRF_KEY = "development-console-csrf-key-not-for-production"


class ConsoleSettings(ServiceSettings):
    uses_kafka: ClassVar[bool] = False  # it calls the services over HTTP only

    service_name: str = "console"
    port: int = 8000
    database_name: str = "tiaojie_console"
    # Roster workbooks are uploaded through the console.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    # Where the services answer; the tests' mesh passes each one's random port.
    intake_url: str = "http://127.0.0.1:8001"
    referral_url: str = "http://127.0.0.1:8002"
    registry_url: str = "http://127.0.0.1:8003"
    stats_url: str = "http://127.0.0.1:8004"
    library_url: str = "http://127.0.0.1:8005"
    upstream_timeout: float = Field(default=15.0, gt=0)
    # Tokens the console signs for a call on a user's behalf (one per call, for the one
    # service called) live only this long.
    upstream_token_seconds: int = Field(default=120, ge=10, le=600)
    # The key of the CSRF tokens' HMAC: a secret of its own, nothing to do with tokens.
    csrf_key: SecretStr = SecretStr(DEV_CSRF_KEY)

    # The city the deployment serves (GB/T 2260): its counties fill the location picker.
    city: str = Field(default="3713", pattern=r"^\d{4}$")

    # Sessions: signed out after this much inactivity, and in any case after the maximum.
    session_idle_seconds: int = Field(default=30 * 60, ge=1)
    session_max_seconds: int = Field(default=12 * 3600, ge=1)
    # Secure cookies are only sent over HTTPS (browsers treat http://localhost as secure).
    cookie_secure: bool = True
    # Sign-in throttling (README "Sign-in"). A failure counts for this long:
    sign_in_window_seconds: int = Field(default=15 * 60, ge=1)
    # Failures of one account from one address before that address (only) is locked out
    # of that account for lockout_seconds.
    max_failed_sign_ins: int = Field(default=5, ge=1)
    lockout_seconds: int = Field(default=15 * 60, ge=1)
    # Failures from one address, whatever the accounts, before it gets 429 until they age out.
    address_max_failed_sign_ins: int = Field(default=20, ge=1)
    # Once an account has max_failed_sign_ins failures from anywhere, an address that has
    # failed it too waits 1, 2, 4 ... seconds (at most this) after the account's last failure;
    # an address that has not failed it is never delayed.
    account_delay_max_seconds: int = Field(default=60, ge=1)
    # Reverse proxies whose X-Forwarded-For is believed (JSON list of networks, e.g.
    # TIAOJIE_TRUSTED_PROXIES='["10.0.0.0/8"]'); none by default: the peer's address counts.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)

    # Demo accounts (development only: refused in production).
    demo_accounts: bool = True
    demo_password: str = "Tiaojie-2026"  # noqa: S105 - development accounts, printed by `tiaojie up`

    # Apache ECharts, installed from the npm registry by `tiaojie prepare` (not committed).
    assets_dir: Path | None = None

    @model_validator(mode="after")
    def _no_demo_accounts_in_production(self) -> ConsoleSettings:
        if self.environment == "production" and self.demo_accounts:
            raise ValueError("production refuses demo accounts: set TIAOJIE_DEMO_ACCOUNTS=false")
        if self.environment == "production" and self.csrf_key.get_secret_value() == DEV_CSRF_KEY:
            raise ValueError("production requires TIAOJIE_CSRF_KEY")
        if self.environment == "production" and self.jwt_signing_key is None:
            # The console is the issuer: it signs the tokens of everyone it signs in.
            raise ValueError("production requires TIAOJIE_JWT_SIGNING_KEY on the console")
        return self

    @property
    def console_assets(self) -> Path:
        """Folder holding node_modules/echarts (see tiaojie.infra's prepare step)."""
        return self.assets_dir or (self.cache_dir / "console-assets")
