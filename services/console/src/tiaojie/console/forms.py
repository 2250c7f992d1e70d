"""Form fields to API bodies and API field errors back to form fields.

Inputs are named after the API's field paths (applicants.0.id_number), so an error the
service reports for a field is shown next to exactly that input.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData

_PARTY_FIELD = re.compile(
    r"^(applicants|respondents)\.(\d{1,2})\.(name|id_number|phone|address|kind|vulnerable)$"
)
MAX_PARTIES = 20


def text(form: FormData, name: str) -> str | None:
    """A trimmed text field, None when empty."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def parties(form: FormData, group: str) -> list[dict[str, Any]]:
    """The party rows of a group, in order, skipping rows left entirely empty."""
    rows: dict[int, dict[str, Any]] = {}
    for key in form:
        match = _PARTY_FIELD.match(key)
        if not match or match.group(1) != group or int(match.group(2)) >= MAX_PARTIES:
            continue
        index, field = int(match.group(2)), match.group(3)
        if field == "vulnerable":
            rows.setdefault(index, {})["vulnerable"] = True
            continue
        value = text(form, key)
        if value is not None:
            rows.setdefault(index, {})[field] = value
    out = []
    for index in sorted(rows):
        row = rows[index]
        if any(k in row for k in ("name", "id_number", "phone", "address")):
            out.append(row)
    return out


def submission(form: FormData, *, channel: str) -> dict[str, Any]:
    """A DisputeSubmission body from the apply or register form; the service validates it."""
    body: dict[str, Any] = {
        "channel": channel,
        "county": text(form, "county") or "",
        "description": text(form, "description") or "",
        "applicants": parties(form, "applicants"),
        "respondents": parties(form, "respondents"),
    }
    for name in ("township", "category", "occurred_on", "address"):
        value = text(form, name)
        if value is not None:
            body[name] = value
    amount = text(form, "amount")
    if amount is not None:
        # Sent as typed: the service says, next to the field, if it is not a number.
        body["amount"] = amount.replace(",", "").replace("，", "")
    return body


def row_count(values: dict[str, Any], group: str, minimum: int = 1) -> int:
    """How many party rows to show again after a refused submission."""
    indices = [int(m.group(2)) for k in values if (m := _PARTY_FIELD.match(k)) and m.group(1) == group]
    return max(minimum, (max(indices) + 1) if indices else 0)


def echo(form: FormData) -> dict[str, str]:
    """What the person typed, to fill the form again (never stored, never logged)."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def errors_by_field(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """API field paths as form names; a missing applicant list points at the first row."""
    out: dict[str, list[str]] = {}
    for field, messages in errors.items():
        name = {"applicants": "applicants.0.name", "respondents": "respondents.0.name"}.get(field, field)
        out.setdefault(name, []).extend(messages)
    return out
