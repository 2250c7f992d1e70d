"""Object-level authorisation (OWASP API1:2023): which registry records a caller may see
and change.

Every caller is confined to the counties of its token, an administrator too (as in
intake). A token naming an organisation (a desk or centre of one organisation, a mediator
of one committee) is further confined to that organisation and the organisations under
it (its parent chain reaches the token's organisation: a county centre acts for the
committees under it). Organisations themselves are the county's directory: every caller
of the county reads them (a desk needs the county's bodies to transfer a case), and only
those within the caller's organisations may be changed. A mediator's token sees only the
cases it holds.

The rule a route applies: a record outside what the caller sees answers 404, exactly like
a missing one (no oracle); a change the caller may not make to a record it sees answers
403; a write checks the record as it is and as it will be, and every organisation it
links. The rules are pure; the service reads what they need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tiaojie.contracts.common import DivisionLevel
from tiaojie.registry.models import CaseView, MediatorDoc, OrganisationDoc
from tiaojie.runtime.errors import FieldError, Forbidden, Invalid, NotFound

# Organisations above the counties (a city centre) parent every county's centre: a county
# may name one as its centre's parent although it is filed under another county.
ABOVE_COUNTY = frozenset({DivisionLevel.CITY})


@dataclass(frozen=True)
class Access:
    """What one caller may see and change; `domain` None: every organisation of its counties."""

    counties: frozenset[str]
    domain: frozenset[str] | None = None
    # Set for a mediator's token: the only cases it sees are those it holds ("" for none).
    mediator_id: str | None = None

    def sees_county(self, county: str | None) -> bool:
        return county is not None and county in self.counties

    def sees_organisation(self, org: OrganisationDoc) -> bool:
        """The county's directory: every organisation of the caller's counties."""
        return self.sees_county(org.county)

    def acts_for(self, organisation_id: str | None) -> bool:
        """True if the caller may act for this organisation (file it, link it, use it)."""
        return organisation_id is not None and (self.domain is None or organisation_id in self.domain)

    def sees_mediator(self, m: MediatorDoc) -> bool:
        return self.sees_county(m.county) and (
            self.domain is None or any(self.acts_for(o) for o in m.organisation_ids)
        )

    def sees_case(self, case: CaseView) -> bool:
        if not self.sees_county(case.county):
            return False
        if self.mediator_id is not None and case.mediator_id != self.mediator_id:
            return False
        return self.domain is None or self.acts_for(case.organisation_id)


def out_of_scope() -> FieldError:
    return FieldError("county", "county_out_of_scope", "无权管理该县区", "county outside your scope")


def not_found_mediator() -> NotFound:
    return NotFound("调解员", "mediator")


def not_found_organisation() -> NotFound:
    return NotFound("调解组织", "organisation")


def forbidden_outside() -> Forbidden:
    return Forbidden(
        "无权在本组织或所辖县区以外进行此项变更",
        "this change reaches outside your organisation or counties",
    )


def require_mediator(access: Access | None, m: MediatorDoc | None) -> MediatorDoc:
    """The mediator as it is, if the caller sees it; else 404 as if missing."""
    if m is None or (access is not None and not access.sees_mediator(m)):
        raise not_found_mediator()
    return m


def require_organisation(access: Access | None, org: OrganisationDoc | None) -> OrganisationDoc:
    if org is None or (access is not None and not access.sees_organisation(org)):
        raise not_found_organisation()
    return org


def mediator_change(
    access: Access | None, *, current: MediatorDoc | None, county: str, organisation_ids: Sequence[str]
) -> None:
    """A registration as it will be, against the mediator as it is: 422 for one of another
    county than the caller's that it does not see (whether it exists or not: no oracle), 404
    for a mediator it does not see, 403 for one it sees but would move outside its counties
    or organisations (the organisations are checked one by one by `organisation_links`)."""
    if access is None:
        return
    if not access.sees_county(county) and (current is None or not access.sees_mediator(current)):
        raise Invalid([out_of_scope()])
    if current is not None:
        require_mediator(access, current)
        if not access.sees_county(county):
            raise forbidden_outside()
        if not all(access.acts_for(o) for o in current.organisation_ids):
            raise forbidden_outside()  # it also serves an organisation the caller does not act for
    outside = access.domain is not None and not all(access.acts_for(o) for o in organisation_ids)
    if outside and (current is not None or access.sees_county(county)):
        raise forbidden_outside()


def mediator_edit(access: Access | None, m: MediatorDoc | None) -> MediatorDoc:
    """A status, training or sanction: the caller must see the mediator and act for every
    organisation it serves."""
    found = require_mediator(access, m)
    if access is not None and not all(access.acts_for(o) for o in found.organisation_ids):
        raise forbidden_outside()
    return found


def organisation_links(
    access: Access | None,
    *,
    county: str,
    organisation_ids: Sequence[str],
    known: Mapping[str, OrganisationDoc | None],
) -> list[FieldError]:
    """A mediator's organisations: each must exist where the caller sees it (else the same
    answer as a missing one) and be of the mediator's county."""
    errors = []
    for i, org_id in enumerate(organisation_ids):
        org = known.get(org_id)
        if org is None or (access is not None and not access.sees_organisation(org)):
            errors.append(
                FieldError(
                    f"organisation_ids.{i}", "unknown_organisation", "调解组织不存在", "no such organisation"
                )
            )
        elif org.county != county:
            errors.append(
                FieldError(
                    f"organisation_ids.{i}",
                    "organisation_other_county",
                    "调解组织不属于该调解员所在县区",
                    "the organisation is not of the mediator's county",
                )
            )
    return errors


def organisation_change(
    access: Access | None, *, current: OrganisationDoc | None, county: str, parent_id: str | None
) -> None:
    """A filing as it will be, against the organisation as it is: 404 for one the caller
    does not see, 403 for one it sees but may not change or would move out of its counties,
    422 for one of another county that it does not see (whether it exists or not). An
    organisation-scoped caller files a new organisation only under one it acts for."""
    if access is None:
        return
    if not access.sees_county(county) and (current is None or not access.sees_organisation(current)):
        raise Invalid([out_of_scope()])
    if current is not None:
        require_organisation(access, current)
        if not access.sees_county(county) or not access.acts_for(current.id):
            raise forbidden_outside()
    elif access.domain is not None and access.sees_county(county) and not access.acts_for(parent_id):
        raise forbidden_outside()


def parent_link(
    access: Access | None, *, parent: OrganisationDoc | None, current: OrganisationDoc | None
) -> bool:
    """True if the caller may name this parent: one of its counties (within its
    organisations when it has them), or an organisation above the counties; an unchanged
    parent always."""
    if access is None or parent is None:
        return parent is not None
    if current is not None and current.parent_id == parent.id:
        return True
    if parent.level in ABOVE_COUNTY and access.domain is None:
        return True
    return access.sees_organisation(parent) and access.acts_for(parent.id)


def require_case(access: Access, case: CaseView | None) -> CaseView:
    """The case as the registry knows it, if the caller sees it; else 404 as if missing."""
    if case is None or not access.sees_case(case):
        raise NotFound("案件", "case")
    return case


def reassignment(access: Access, *, case: CaseView, mediator: MediatorDoc | None) -> None:
    """A manual reassignment links the case to a mediator and one of its organisations (the
    case's own if the mediator serves it, else the mediator's first): the mediator must be
    one the caller sees (else answered as a missing one), of the case's county, and the
    organisation one the caller acts for."""
    if mediator is None or not access.sees_mediator(mediator):
        raise Invalid([FieldError("mediator_id", "unknown_mediator", "调解员不存在", "no such mediator")])
    if mediator.county != case.county:
        raise Invalid(
            [
                FieldError(
                    "mediator_id",
                    "mediator_other_county",
                    "调解员不属于案件所在县区",
                    "the mediator is not of the case's county",
                )
            ]
        )
    linked = (
        case.organisation_id
        if case.organisation_id in mediator.organisation_ids
        else next(iter(mediator.organisation_ids), None)
    )
    if not access.acts_for(linked):
        raise forbidden_outside()
