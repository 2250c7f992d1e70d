"""The console's pure rules: forms to API bodies, errors back to fields, passwords, CSRF
tokens, deadlines in words, safe redirects and which actions a role sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import FormData

from tiaojie.console import forms
from tiaojie.console.pages.cases import available
from tiaojie.console.security import CsrfSigner, hash_password, needs_rehash, verify_password
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
