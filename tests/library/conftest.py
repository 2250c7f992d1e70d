"""A case-library service in this process, on the real Kafka and FerretDB, in its own
namespace (so a mesh of the same session never shares its consumer group), with a manual
clock; plus builders of the events intake would send it."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devkit.access import as_service
from devkit.namespace import drop_namespace
from tests.support.data import COUNTY, TOWNSHIP, auth
from tests.support.kafka import eventually, produce
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel, Role
from tiaojie.contracts.envelope import CloudEvent, new_event
from tiaojie.contracts.intake import CaseNominated, CaseRegistered, NominatedContent, NominatedSession
from tiaojie.infra import synthetic
from tiaojie.library.app import create_app
from tiaojie.library.models import EntryDoc
from tiaojie.library.service import LibraryService, entry_id_for
from tiaojie.library.settings import LibrarySettings
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.pii import Protector
from tiaojie.runtime.settings import RuntimeSettings


@dataclass
class Library:
    settings: LibrarySettings
    service: LibraryService
    client: httpx.AsyncClient
    clock: ManualClock

    def headers(self, role: Role, counties: list[str] | None = None, **claims: Any) -> dict[str, str]:
        return auth(self.settings, role, counties, **claims)

    def protector(self) -> Protector:
        return Protector(
            encryption_key=self.settings.pii_key.get_secret_value(),
            match_key=self.settings.match_key.get_secret_value(),
        )

    async def send(self, topic: str, event: CloudEvent) -> None:
        await produce(
            self.settings.kafka_bootstrap,
            self.settings.topic(topic),
            [event.to_bytes()],
            key=(event.subject or event.id).encode(),
        )

    async def entry(self, case_id: str) -> EntryDoc:
        """The entry of a nominated case, once the handler stored it."""
        found = await eventually(lambda: self.service.repo.get_entry(entry_id_for(case_id)), timeout=30)
        assert isinstance(found, EntryDoc)
        return found


async def own_settings(settings: RuntimeSettings, suffix: str = "lib") -> LibrarySettings:
    """An in-process library in a namespace of its own, as the library's principal there."""
    scoped = settings.model_copy(update={"namespace": f"{settings.namespace}_{suffix}"})
    return LibrarySettings(
        **{**scoped.model_dump(), "log_json": False, **await as_service(scoped, "library")}
    )


@pytest.fixture(scope="package")
async def library(settings: RuntimeSettings) -> AsyncIterator[Library]:
    own = await own_settings(settings)
    clock = ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    app = create_app(own, clock=clock)
    service: LibraryService = app.state.library
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://library", timeout=30) as client:
            yield Library(settings=own, service=service, client=client, clock=clock)
    await drop_namespace(own)


@dataclass(frozen=True)
class People:
    applicant: str
    respondent: str
    id_number: str
    phone: str


def people(seed: str) -> People:
    rng = random.Random(seed)
    applicant = synthetic.person_name(rng)
    respondent = synthetic.person_name(rng)
    while respondent[0] == applicant[0]:
        respondent = synthetic.person_name(rng)
    return People(applicant, respondent, synthetic.id_number(rng, COUNTY), synthetic.mobile(rng))


def nominated_content(p: People) -> NominatedContent:
    """A neighbours' dispute as the case file tells it: with names, numbers and addresses."""
    phone = f"+86 {p.phone[:3]}-{p.phone[3:7]}-{p.phone[7:]}"
    held = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
    return NominatedContent(
        description=(
            f"申请人{p.applicant}（身份证号{p.id_number[:6]} {p.id_number[6:14]} {p.id_number[14:]}，"
            f"电话{phone}）"
            f"住兰山街道西关村3组12号，与邻居{p.respondent}共用一条过道。{p.respondent}在过道内堆放柴草杂物并搭建鸡舍，"
            f"{p.applicant}家的三轮车无法通行，双方多次争吵。"
        ),
        parties=[
            {"role": "applicant", "name": p.applicant},
            {"role": "respondent", "name": p.respondent},
        ],
        sessions=[
            NominatedSession(
                held_at=held,
                place="西关村村委会",
                participants=f"{p.applicant}、{p.respondent}、村干部",
                record=(
                    f"调解员到现场查看过道，面对面组织双方协商，讲明相邻关系应当方便生活、团结互助。"
                    f"{p.respondent}表示愿意清理杂物。"
                ),
            ),
            NominatedSession(
                held_at=held + timedelta(days=3),
                record=f"{p.respondent}已清理过道，鸡舍迁走。{p.applicant}表示满意。",
            ),
        ],
        agreement_text=f"{p.respondent}三日内清理过道杂物，迁走鸡舍，双方约定过道保持畅通。",
        follow_up_record=f"回访时{p.applicant}称过道畅通，双方关系缓和。",
    )


def nomination(
    case_id: str,
    p: People,
    *,
    protector: Protector,
    county: str = COUNTY,
    category: Category = Category.NEIGHBOURHOOD,
    by: str = "test-mediator",
) -> CloudEvent:
    content = nominated_content(p)
    data = CaseNominated(
        case_id=case_id,
        county=county,
        township=TOWNSHIP if county == COUNTY else None,
        category=category,
        organisation_id=f"org-{TOWNSHIP}-tc",
        case_number="(2026)临兰人调字第7号",
        outcome=CaseStatus.RESOLVED,
        amount=None,
        received_at=datetime(2026, 1, 10, 1, 0, tzinfo=UTC),
        closed_at=datetime(2026, 1, 20, 1, 0, tzinfo=UTC),
        nominated_by=by,
        nominated_at=datetime(2026, 2, 1, 1, 0, tzinfo=UTC),
        note=f"调解员耐心细致，{p.applicant}和{p.respondent}握手言和，具有示范意义。",
        content_enc=protector.encrypt(content.model_dump_json()),
    )
    return new_event(data, source="/tiaojie/intake", subject=case_id, county=county, id=str(uuid.uuid4()))


def registered(
    case_id: str, *, county: str = COUNTY, category: Category = Category.NEIGHBOURHOOD
) -> CloudEvent:
    data = CaseRegistered(
        case_id=case_id,
        channel=Channel.DESK,
        county=county,
        township=TOWNSHIP if county == COUNTY else None,
        category=category,
        received_at=datetime(2026, 3, 1, 1, 0, tzinfo=UTC),
    )
    return new_event(data, source="/tiaojie/intake", subject=case_id, county=county)


def new_case_id() -> str:
    return str(uuid.uuid4())


__all__ = ["Library", "People", "nomination", "people", "registered", "topics"]
