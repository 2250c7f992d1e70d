"""Moved to devkit.access (the benchmarks use it too); this name stays for the test
modules that still import it from here, until their import lines move."""

from devkit.access import (
    admin_for,
    admin_kwargs,
    admin_settings,
    as_service,
    credentials_of,
    deployment,
    forget,
    register_admin,
)

__all__ = [
    "admin_for",
    "admin_kwargs",
    "admin_settings",
    "as_service",
    "credentials_of",
    "deployment",
    "forget",
    "register_admin",
]
