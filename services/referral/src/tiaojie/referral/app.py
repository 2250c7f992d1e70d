"""Composition root of the referral service: broker, stores, handlers, sweeps, timers, HTTP app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from fastapi import FastAPI

from tiaojie.contracts import topics
from tiaojie.contracts.referral import (
    AGENCY_NOTICES,
    AgencyDeactivated,
    AgencyRegistered,
    DeadlineCleared,
    DeadlineExtended,
    DeadlineOverdue,
    DeadlineReminded,
    ReferralAccepted,
    ReferralClosed,
    ReferralDeclined,
    ReferralInMediation,
    ReferralRequested,
    TransferAccepted,
    TransferCompleted,
    TransferDeclined,
    TransferRequested,
)
from tiaojie.referral.api import router
from tiaojie.referral.broker import AgencyAccess
from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.handlers import register_handlers
from tiaojie.referral.inbound import AgencyInbound
from tiaojie.referral.metrics import ReferralMetrics
from tiaojie.referral.repository import ReferralRepository
from tiaojie.referral.service import ReferralService
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.calendar import WorkCalendar, default_calendar
from tiaojie.runtime.clock import Clock, SystemClock
from tiaojie.runtime.divisions import load_divisions
from tiaojie.runtime.host import ServiceHost
from tiaojie.runtime.kafka import create_physical_topics
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import OutboxRelay, sweep_forever
from tiaojie.runtime.pii import Protector

log = get_logger(__name__)

REFERRAL_EVENTS = (
    ReferralRequested,
    ReferralAccepted,
    ReferralDeclined,
    ReferralInMediation,
    ReferralClosed,
    TransferRequested,
    TransferAccepted,
    TransferDeclined,
    TransferCompleted,
    DeadlineReminded,
    DeadlineOverdue,
    DeadlineCleared,
    DeadlineExtended,
)


@dataclass
class Referral:
    """The wired parts of one referral process (tests drive them directly)."""

    host: ServiceHost
    repository: ReferralRepository
    relay: OutboxRelay
    service: ReferralService
    inbound: AgencyInbound


def build(
    settings: ReferralSettings | None = None,
    *,
    clock: Clock | None = None,
    calendar: WorkCalendar | None = None,
    configure_logs: bool = True,
) -> Referral:
    settings = settings or ReferralSettings()
    host = ServiceHost(settings, produces=[topics.REFERRALS, topics.AGENCIES], configure_logs=configure_logs)
    repository = ReferralRepository(host.db, publisher=host.publisher, settings=settings)
    # Rejection notices are facts with an outbox of their own; everything else is published
    # by the storage engine (its sweep below recovers what a crash left unpublished).
    relay = OutboxRelay(
        publisher=host.publisher, settings=settings, collections=repository.outbox_collections
    )

    async def make_topics(physical: list[str]) -> None:
        await create_physical_topics(settings, physical)

    calendar = calendar or default_calendar()
    service = ReferralService(
        repository=repository,
        protector=Protector(
            encryption_key=settings.pii_key.get_secret_value(),
            match_key=settings.match_key.get_secret_value(),
        ),
        divisions=load_divisions(str(settings.divisions_path)),
        rules=DeadlineRules(settings, calendar),
        settings=settings,
        clock=clock or SystemClock(),
        metrics=ReferralMetrics(host.registry),
        access=AgencyAccess(settings),
    )
    inbound = AgencyInbound(
        service=service, repository=repository, relay=relay, settings=settings, make_topics=make_topics
    )
    register_handlers(host.consumer, service, inbound, settings)
    host.publisher.declare(
        topics.REFERRALS,
        title=topics.REFERRALS,
        description="Referral and transfer lifecycle, reminders (催办) and overdue escalations, "
        "keyed by referral or transfer id.",
        schema=Union[REFERRAL_EVENTS],  # noqa: UP007 - a runtime union of the classes
    )
    host.publisher.declare(
        topics.AGENCIES,
        title=topics.AGENCIES,
        description="Registered and deactivated agencies, keyed by agency id.",
        schema=Union[AgencyRegistered, AgencyDeactivated],  # noqa: UP007
    )
    host.publisher.declare(
        "agency.{agency_id}.outcomes.v1",
        title="agency.{agency_id}.outcomes.v1",
        description="What each agency hears back, keyed by the agency's own reference (agency_ref).",
        schema=Union[AGENCY_NOTICES],  # noqa: UP007
    )

    async def check_calendar() -> None:
        """Working days of a year without its State Council notice are guesses: say so."""
        now = service.clock.now()
        wanted = [now.year] + ([now.year + 1] if now.month >= 11 else [])
        for year in wanted:
            if not calendar.covers(year):
                log.warning(
                    "holiday calendar lacks this year's notice (tiaojie.runtime data/holidays.toml)",
                    year=year,
                )

    async def sweep_revisions() -> None:
        """Roll forward and publish what crashed writers left, every relay interval."""
        await sweep_forever(repository.sweep, settings.outbox_relay_interval, what="revision sweep")

    host.on_startup(repository.create_indexes)
    host.on_startup(check_calendar)
    host.background(relay.run_forever)
    host.background(sweep_revisions)
    host.background(service.run_timers)
    return Referral(host=host, repository=repository, relay=relay, service=service, inbound=inbound)


def create_app(settings: ReferralSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    parts = build(settings, clock=clock)
    app = parts.host.http_app(
        [router],
        title="Tiaojie referral 诉调/警调/访调对接",
        description="Court, police and petition referrals; 转办/交办/上报 between bodies; deadlines, "
        "催办 and overdue escalation; outcomes back to the sender.",
    )
    app.state.referral = parts.service
    return app
