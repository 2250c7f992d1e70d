"""Referral parts wired as the service wires them, on the real Kafka and FerretDB, with a
manual clock so tests move time instead of sleeping through deadlines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from devkit.access import as_service
from devkit.namespace import drop_namespace
from tests.support.data import COUNTY, TOWNSHIP
from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, CaseStatus, Category, Channel
from tiaojie.contracts.envelope import CloudEvent, decode_event
from tiaojie.contracts.intake import CaseAssignmentRecorded, CaseRegistered, DisputeSubmission
from tiaojie.contracts.referral import AgencyReferralSubmitted
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.referral.app import Referral, build
from tiaojie.referral.models import AgencyDoc
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.kafka import create_physical_topics
from tiaojie.runtime.settings import RuntimeSettings

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Beijing
CENTRE = f"org-{COUNTY}-centre"
COMMITTEE = f"org-{TOWNSHIP}-tc"
OTHER_COMMITTEE = f"org-{COUNTY}002-tc"

Factory = Callable[..., Awaitable[Referral]]


async def referral_settings(
    settings: RuntimeSettings, database: str, **overrides: object
) -> ReferralSettings:
    """An in-process referral as the referral principal of its namespace (and holding that
    namespace's provisioning principal, as the service does)."""
    namespace = str(overrides.get("namespace", settings.namespace))
    scoped = settings.model_copy(update={"namespace": namespace})
    fields: dict[str, object] = {
        **await as_service(scoped, "referral"),
        "mongo_url": settings.mongo_url,
        "namespace": settings.namespace,
        "divisions_dir": settings.divisions_dir,
        "retry_base_delay": 0.05,
        "retry_max_delay": 0.5,
        "outbox_relay_interval": 1.0,
        "kafka_metadata_max_age_ms": 2000,
        "database_name": database,
    }
    return ReferralSettings(**{**fields, **overrides})  # type: ignore[arg-type]


def organisations() -> list[OrganisationUpdated]:
    """A county centre with two township committees under it."""
    return [
        OrganisationUpdated(
            organisation_id=CENTRE,
            version=1,
            name="兰山区矛盾纠纷多元化解中心",
            short_name="兰山",
            kind="centre",
            level="county",
            county=COUNTY,
            division_code=COUNTY,
        ),
        OrganisationUpdated(
            organisation_id=COMMITTEE,
            version=1,
            name="兰山街道人民调解委员会",
            short_name="兰山街",
            kind="township_committee",
            level="township",
            county=COUNTY,
            division_code=TOWNSHIP,
            parent_id=CENTRE,
        ),
        OrganisationUpdated(
            organisation_id=OTHER_COMMITTEE,
            version=1,
            name="银雀山街道人民调解委员会",
            short_name="银雀山",
            kind="township_committee",
            level="township",
            county=COUNTY,
            division_code=f"{COUNTY}002",
            parent_id=CENTRE,
        ),
    ]


@pytest.fixture
async def make_referral(settings: RuntimeSettings, unique: str) -> AsyncIterator[Factory]:
    """Build referral processes-in-miniature sharing one database (replicas, restarts)."""
    built: list[Referral] = []
    await create_physical_topics(
        settings,
        [settings.topic(t) for t in (topics.REFERRALS, topics.AGENCIES, topics.dlq(topics.REFERRALS))],
    )

    async def make(clock: ManualClock, *, consume: bool = False, **overrides: object) -> Referral:
        # A consumer group of its own: the session's mesh runs a referral service in the
        # same namespace, and sharing its group would split partitions between the two.
        overrides.setdefault("service_name", f"referral-{unique}")
        if consume:
            # A namespace of its own as well: the mesh's referral service subscribes to every
            # agency topic of the session's namespace by pattern, and would read (and
            # dead-letter, not knowing the agency) this test's agency records too.
            overrides.setdefault("namespace", f"{settings.namespace}_rf{unique}")
        parts = build(
            await referral_settings(settings, f"referral_{unique}", **overrides),
            clock=clock,
            configure_logs=False,
        )
        await parts.repository.create_indexes()
        if consume:
            await parts.host.ensure_topics()
            parts.host.consumer.bind()
            await parts.host.broker.start()
        else:
            await parts.host.broker.connect()
        for org in organisations():
            await parts.service.project_organisation(event=org)
        built.append(parts)
        return parts

    yield make
    for parts in built:
        await stop(parts)
    for own in {parts.host.settings.namespace for parts in built} - {settings.namespace}:
        await drop_namespace(settings.model_copy(update={"namespace": own}))


async def stop(parts: Referral) -> None:
    """Stop a built process (what a restart or a crash leaves behind is in the database)."""
    try:
        await parts.host.broker.stop()
    finally:
        await parts.host.mongo.close()


def submission(**overrides: object) -> DisputeSubmission:
    body = {
        "channel": Channel.REFERRAL,
        "county": COUNTY,
        "township": TOWNSHIP,
        "category": "contract",
        "description": "买卖合同纠纷：被告拖欠货款三万元，双方同意诉前调解。",
        "applicants": [{"name": "王某", "id_number": "371302198001011239", "phone": "13812345678"}],
        "respondents": [{"name": "某商贸有限公司", "kind": "organisation"}],
        "amount": 30000,
        **overrides,
    }
    return DisputeSubmission.model_validate(body)


def referral_data(ref: str, kind: str = "delegation", **overrides: object) -> AgencyReferralSubmitted:
    return AgencyReferralSubmitted.model_validate(
        {"agency_ref": ref, "referral_kind": kind, "submission": submission(), **overrides}
    )


async def court(parts: Referral, agency_id: str, kind: AgencyKind = AgencyKind.COURT) -> AgencyDoc:
    agency, _, _ = await parts.service.register_agency(
        agency_id=agency_id, kind=kind, county=COUNTY, name="兰山区人民法院", source=None, by="admin"
    )
    return agency


def events_about(records: list[object], subject_id: str) -> list[CloudEvent]:
    out = []
    for record in records:
        event = decode_event(record.value)  # type: ignore[attr-defined]
        if event.subject == subject_id or event.data.get("subject_id") == subject_id:
            out.append(event)
    return out


def registered(case_id: str, referral_id: str | None = None, **extra: object) -> CaseRegistered:
    fields: dict[str, object] = {
        "case_id": case_id,
        "channel": Channel.REFERRAL,
        "county": COUNTY,
        "township": TOWNSHIP,
        "category": Category.CONTRACT,
        "organisation_id": CENTRE,
        "party_keys": ["k-applicant"],
        "received_at": T0,
        "referral_id": referral_id,
    }
    return CaseRegistered.model_validate({**fields, **extra})


def assignment_recorded(case_id: str, referral_id: str | None = None) -> CaseAssignmentRecorded:
    """Intake recorded the case's mediator (after 受理): the case is assigned."""
    return CaseAssignmentRecorded(
        case_id=case_id,
        county=COUNTY,
        township=TOWNSHIP,
        organisation_id=COMMITTEE,
        status=CaseStatus.ASSIGNED,
        at=T0,
        referral_id=referral_id,
        mediator_id="med-1",
    )
