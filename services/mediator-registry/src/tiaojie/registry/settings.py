"""Registry settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from tiaojie.runtime.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: str = "registry"
    port: int = 8003
    database_name: str = "tiaojie_registry"
    default_capacity: int = Field(default=20, ge=1, description="open cases a mediator may carry")
