"""Object-level authorisation (OWASP API1:2023): which cases a caller may see and act on.

Every caller is confined to the counties of its token, an administrator too (as in the
registry). A token naming an organisation (a desk or centre of one organisation, a
mediator of one committee) is further confined to the cases of that organisation and of
the organisations under it in intake's directory projection (their parent chain reaches
the token's organisation: a county centre acts for the committees under it). A case no
organisation holds yet (routing found none) is the county's: every caller of the county
sees it, so that a desk can route it, and the organisation it is accepted for must be
one the caller acts for. A mediator's token sees only the cases it holds. Tokens without
an organisation keep the county's reach.

A case outside the scope answers 404, exactly like a missing one (no oracle); a change of
a case the caller sees that would take it outside the caller's organisations answers 403.
The rules are pure; the service reads the directory they need."""

from __future__ import annotations

from dataclasses import dataclass

from tiaojie.runtime.errors import Forbidden
from tiaojie.runtime.mongo import Document


@dataclass(frozen=True)
class Scope:
    """Whose eyes a read is for: counties always; within them the organisations of an
    organisation-scoped token (None: all of them); a mediator only their own cases."""

    counties: frozenset[str]
    mediator_id: str | None = None
    organisations: frozenset[str] | None = None

    def acts_for(self, organisation_id: str | None) -> bool:
        """True if the caller may act for this organisation (hold a case there)."""
        return organisation_id is not None and (
            self.organisations is None or organisation_id in self.organisations
        )

    def admits(self, doc: Document) -> bool:
        if doc.get("county") not in self.counties:
            return False
        if self.mediator_id is not None and doc.get("mediator_id") != self.mediator_id:
            return False
        held_by = doc.get("organisation_id")
        return held_by is None or self.acts_for(held_by)


def forbidden_outside() -> Forbidden:
    return Forbidden(
        "无权将案件交由本组织以外的调解组织办理",
        "this would put the case in an organisation outside yours",
    )


__all__ = ["Scope", "forbidden_outside"]
