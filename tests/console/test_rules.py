"""The console's pure rules: forms to API bodies, errors back to fields, passwords, CSRF
tokens, deadlines in words, safe redirects and which actions a role sees."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import FormData

from tiaojie.console import forms
from tiaojie.console.pages.cases import available
from tiaojie.console.security import (
    CsrfSigner,
    Network,
    client_address,
    hash_password,
    needs_rehash,
    verify_password,
)
from tiaojie.console.service import account_wait
from tiaojie.console.settings import ConsoleSettings
from tiaojie.console.web import _due, safe_next
from tiaojie.contracts.common import Role

pytestmark = pytest.mark.unit


def test_apply_form_becomes_a_submission_and_skips_empty_rows() -> None:
    form = FormData(
        [
            ("county", "371302"),
            ("township", "371302001"),
            ("category", ""),
            ("description", "  邻居堆放杂物  "),
            ("amount", "1,200"),
            ("applicants.0.name", "王某"),
            ("applicants.0.id_number", "371302198001011239"),
            ("applicants.0.phone", ""),
            ("respondents.0.name", "李某"),
            ("respondents.1.name", ""),
            ("respondents.1.phone", ""),
            ("applicants.0.$where", "x"),  # not a field the form has: ignored
        ]
    )
    body = forms.submission(form, channel="mobile")
    assert body == {
        "channel": "mobile",
        "county": "371302",
        "township": "371302001",
        "description": "邻居堆放杂物",
        "amount": "1200",
        "applicants": [{"name": "王某", "id_number": "371302198001011239"}],
        "respondents": [{"name": "李某"}],
    }


def test_field_errors_point_at_form_inputs() -> None:
    errors = forms.errors_by_field(
        {"applicants.0.id_number": ["身份证号码校验位错误"], "applicants": ["至少需要1项"]}
    )
    assert errors == {
        "applicants.0.id_number": ["身份证号码校验位错误"],
        "applicants.0.name": ["至少需要1项"],
    }


def test_row_count_keeps_every_row_the_person_typed() -> None:
    assert forms.row_count({"respondents.3.name": "x"}, "respondents") == 4
    assert forms.row_count({}, "respondents") == 1


def test_passwords_are_argon2id_and_verified() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "s3cret")
    assert not verify_password(stored, "S3cret")
    assert not verify_password(None, "s3cret")
    assert not verify_password("not a hash", "s3cret")
    assert not needs_rehash(stored)


def test_csrf_tokens_are_bound_to_one_browser() -> None:
    signer = CsrfSigner("secret")
    token = signer.token_for("s:abc")
    assert signer.valid("s:abc", token)
    assert not signer.valid("s:abd", token)
    assert not signer.valid("s:abc", None)
    assert not CsrfSigner("other secret").valid("s:abc", token)


def test_deadlines_in_words() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert _due(now + timedelta(days=2, hours=5), now) == "剩余2天5小时"
    assert _due(now - timedelta(hours=3), now) == "已逾期3小时"
    assert _due((now + timedelta(minutes=20)).isoformat(), now) == "剩余20分钟"
    assert _due(None, now) == "—"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/desk", "/desk"),
        ("/cases/1?x=1", "/cases/1?x=1"),
        ("//evil.example", None),
        ("https://evil.example", None),
        ("/\\evil.example", None),
        ("", None),
        (None, None),
    ],
)
def test_only_same_site_paths_are_followed(value: str | None, expected: str | None) -> None:
    assert safe_next(value) == expected


def test_each_role_sees_the_actions_of_its_stage() -> None:
    received = {"status": "received"}
    assert {"accept", "reject"} <= set(available(received, Role.DESK))
    assert "accept" not in available(received, Role.MEDIATOR)
    assert available(received, Role.BUREAU) == []
    in_mediation = {"status": "in_mediation"}
    assert {"session", "resolve", "fail"} <= set(available(in_mediation, Role.MEDIATOR))
    assert "resolve" not in available(in_mediation, Role.DESK)
    assert available({"status": "followed_up"}, Role.MEDIATOR) == ["performance", "archive", "document"]


PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", None, [], "203.0.113.7"),
        # Not trusted by default: a client cannot choose its own address.
        ("203.0.113.7", "198.51.100.1", [], "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", PROXIES, "203.0.113.7"),  # the peer is no proxy of ours
        ("10.0.0.2", "198.51.100.1", PROXIES, "198.51.100.1"),
        # What the client wrote to the left of what our proxies appended proves nothing.
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.3", PROXIES, "198.51.100.1"),
        ("10.0.0.2", "not-an-address, 10.0.0.3", PROXIES, "10.0.0.3"),
        ("10.0.0.2", None, PROXIES, "10.0.0.2"),
        ("::ffff:203.0.113.7", None, [], "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", None, [], "2001:db8:1:2::/64"),  # a subscriber's whole /64
        (None, "198.51.100.1", PROXIES, "unknown"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(
    peer: str | None, forwarded: str | None, trusted: list[Network], expected: str
) -> None:
    assert client_address(peer, forwarded, trusted) == expected


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULES = ConsoleSettings(max_failed_sign_ins=5, lockout_seconds=900, account_delay_max_seconds=60)


def test_an_address_that_never_failed_an_account_is_never_held_back() -> None:
    assert account_wait(now=NOW, settings=RULES, pair=(0, None), account=(10_000, NOW)) is None


def test_an_address_is_locked_out_of_an_account_after_its_own_failures() -> None:
    locked = account_wait(now=NOW, settings=RULES, pair=(5, NOW - timedelta(seconds=100)), account=(5, NOW))
    assert locked is not None and locked.reason == "locked" and locked.retry_after == 800
    assert account_wait(now=NOW, settings=RULES, pair=(4, NOW), account=(4, NOW)) is None


def test_an_account_failed_from_many_addresses_delays_them_more_and_more_up_to_a_limit() -> None:
    def wait(failures: int) -> int | None:
        refused = account_wait(now=NOW, settings=RULES, pair=(1, NOW), account=(failures, NOW))
        return refused.retry_after if refused else None

    assert [wait(n) for n in (4, 5, 6, 7, 10, 11, 500)] == [None, 1, 2, 4, 32, 60, 60]
    later = account_wait(now=NOW, settings=RULES, pair=(1, NOW), account=(500, NOW - timedelta(seconds=61)))
    assert later is None  # a delay, never a lock-out
