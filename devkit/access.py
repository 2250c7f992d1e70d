"""Broker identities for the tests: the administrator of each broker a session uses, and
each test namespace's service principals (provisioned once per namespace, as `tiaojie up`
does for a deployment, with passwords that live only in this process)."""

from __future__ import annotations

from typing import Any

from tiaojie.runtime.access import BrokerAdmin, Deployment, PasswordBook, drop_principals, provision
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings

_ADMINS: dict[str, KafkaCredentials] = {}
_DEPLOYMENTS: dict[tuple[str, str], Deployment] = {}


def register_admin(credentials: KafkaCredentials) -> None:
    """The administrator of the broker at credentials.bootstrap (the test harness acts as it
    where it plays the operator, an agency or a producing service)."""
    _ADMINS[credentials.bootstrap] = credentials


def admin_for(bootstrap: str) -> KafkaCredentials:
    try:
        return _ADMINS[bootstrap]
    except KeyError:
        raise LookupError(f"no administrator known for the broker at {bootstrap}") from None


def admin_kwargs(bootstrap: str) -> dict[str, Any]:
    """aiokafka client arguments of the broker's administrator."""
    return client_kwargs(admin_for(bootstrap))


def admin_settings(settings: RuntimeSettings) -> RuntimeSettings:
    """These settings, connecting as the broker's administrator."""
    return settings.as_principal(admin_for(settings.kafka_bootstrap))


async def deployment(settings: RuntimeSettings) -> Deployment:
    """The service principals of settings.namespace, provisioned on first use."""
    key = (settings.kafka_bootstrap, settings.namespace)
    if key not in _DEPLOYMENTS:
        admin = admin_for(settings.kafka_bootstrap)
        _DEPLOYMENTS[key] = await provision(BrokerAdmin(admin), admin_settings(settings), PasswordBook())
    return _DEPLOYMENTS[key]


async def as_service(settings: RuntimeSettings, service: str) -> dict[str, Any]:
    """Settings fields that make an in-process service connect as its own principal in
    settings.namespace (and, for referral, hold its provisioning principal)."""
    return (await deployment(settings)).settings_overrides(service)


def credentials_of(answer: dict[str, Any]) -> KafkaCredentials:
    """The broker credential an agency registration (or rotation) answered with."""
    return KafkaCredentials.of(answer["kafka"])


async def forget(settings: RuntimeSettings) -> None:
    """Drop a namespace's principals and ACLs (best effort, like the rest of the cleanup)."""
    _DEPLOYMENTS.pop((settings.kafka_bootstrap, settings.namespace), None)
    if not settings.namespace:
        return
    try:
        await drop_principals(BrokerAdmin(admin_for(settings.kafka_bootstrap), timeout=5), settings)
    except Exception:  # noqa: S110 - the broker may be gone at the end of a session
        pass
