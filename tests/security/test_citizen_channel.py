"""The citizen channel as a stranger probes it: repeating a victim's ID number and the
respondent's name must not hand back the victim's tracking code or any detail of their
case, nor raise their risk; anonymous submissions and tracking are throttled per client
address (429 with Retry-After), and X-Forwarded-For counts only from a trusted proxy."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.intake.conftest import Intake, running_intake
from tests.support.data import COUNTY, TOWNSHIP
from tiaojie.contracts.common import Role
from tiaojie.infra import synthetic
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.security

PROXY = "10.9.9.9"
DESCRIPTION = "邻居在两家中间的过道堆放杂物，影响通行，多次沟通无果。"


@pytest.fixture(scope="module")
async def intake(settings: RuntimeSettings) -> AsyncIterator[Intake]:
    async with running_intake(
        settings,
        suffix="_cc",
        citizen_submission_limit="3/hour",
        tracking_limit="5/hour",
        trusted_proxies=[PROXY],
    ) as running:
        yield running


def victim(seed: str) -> dict[str, Any]:
    """A person with their own ID number and phone (synthetic, distinct per seed)."""
    rng = random.Random(seed)
    return {
        "name": synthetic.person_name(rng),
        "id_number": synthetic.id_number(rng, COUNTY),
        "phone": synthetic.mobile(rng),
    }


def submission(channel: str, applicant: dict[str, Any], respondent: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "county": COUNTY,
        "township": TOWNSHIP,
        "category": "neighbourhood",
        "description": DESCRIPTION,
        "applicants": [applicant],
        "respondents": [{"name": respondent}],
    }


async def test_an_anonymous_repeat_gets_a_receipt_of_its_own_and_nothing_of_the_victims_case(
    intake: Intake, unique: str
) -> None:
    person = victim(unique)
    desk = intake.headers(Role.DESK)
    first = await intake.client.post(
        "/api/v1/disputes", json=submission("desk", person, "李某某"), headers=desk
    )
    assert first.status_code == 201, first.text
    case = first.json()

    # The stranger knows the victim's ID number and the respondent's name, not the phone.
    probe = {**person, "phone": "13912345678", "name": "王某"}
    async with intake.client_from("198.51.100.20") as stranger:
        answer = await stranger.post("/api/v1/disputes", json=submission("web", probe, "李某某"))
        assert answer.status_code == 201, answer.text
        receipt = answer.json()
        assert receipt["tracking_code"] != case["tracking_code"]
        assert case["tracking_code"] not in answer.text and case["id"] not in answer.text
        assert receipt["linked"] is False and "id" not in receipt
        assert "联系" in receipt["message_zh"]

        tracked = await stranger.get(f"/api/v1/track/{receipt['tracking_code']}")
        assert tracked.status_code == 200, tracked.text
        view = tracked.json()
        assert view["tracking_code"] == receipt["tracking_code"] and view["case_number"] is None
        assert case["tracking_code"] not in tracked.text and case["id"] not in tracked.text

    # The desk still sees the repeat on the case, marked as unverified.
    seen = (await intake.client.get(f"/api/v1/disputes/{case['id']}", headers=desk)).json()
    assert seen["linked_submissions"] == 1
    assert seen["duplicate_links"][0]["verified"] is False

    # The probe did not make the victim a repeat visitor: their next dispute (another
    # respondent) carries no repeat-visit signal.
    later = await intake.client.post(
        "/api/v1/disputes", json=submission("desk", person, "赵某某"), headers=desk
    )
    assert later.status_code == 201, later.text
    assert "repeat_visit" not in later.json()["risk_signals"]


async def test_anonymous_submissions_are_throttled_per_client_address(intake: Intake, unique: str) -> None:
    async with intake.client_from("198.51.100.30") as caller, intake.client_from("198.51.100.31") as other:
        for n in range(3):
            data = submission("web", victim(f"{unique}{n}"), "某甲")
            # Spoofed forwarding headers from an untrusted peer change nothing.
            answer = await caller.post(
                "/api/v1/disputes", json=data, headers={"X-Forwarded-For": f"203.0.113.{n}"}
            )
            assert answer.status_code == 201, answer.text
        refused = await caller.post(
            "/api/v1/disputes",
            json=submission("web", victim(unique + "x"), "某甲"),
            headers={"X-Forwarded-For": "203.0.113.99"},
        )
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        error = refused.json()
        assert error["code"] == "rate_limited" and error["message_zh"] and error["message_en"]
        # Another address is not held back by the first one's traffic.
        fine = await other.post("/api/v1/disputes", json=submission("web", victim(unique + "o"), "某甲"))
        assert fine.status_code == 201, fine.text


async def test_tracking_is_throttled_per_client_address_behind_a_trusted_proxy(intake: Intake) -> None:
    async with intake.client_from(PROXY) as proxy:
        for _ in range(5):
            miss = await proxy.get("/api/v1/track/AAAAAAAAAA", headers={"X-Forwarded-For": "198.51.100.40"})
            assert miss.status_code == 404
        refused = await proxy.get("/api/v1/track/AAAAAAAAAA", headers={"X-Forwarded-For": "198.51.100.40"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        # The proxy forwards for many citizens: the next one is counted on their own.
        other = await proxy.get("/api/v1/track/AAAAAAAAAA", headers={"X-Forwarded-For": "198.51.100.41"})
        assert other.status_code == 404
