"""Who sees which case, as pure rules (access.py): counties, organisations and those under
them, unrouted cases, mediators."""

from __future__ import annotations

from tiaojie.intake.access import Scope
from tiaojie.runtime.directory import Organisation, domain_of


def org(org_id: str, parent: str | None = None) -> Organisation:
    return Organisation.model_validate(
        {
            "_id": org_id,
            "name": org_id,
            "kind": "centre",
            "level": "county",
            "county": "371302",
            "division_code": "371302",
            "parent_id": parent,
        }
    )


DIRECTORY = [org("city"), org("centre", "city"), org("tc1", "centre"), org("tc2", "centre"), org("v1", "tc1")]


def test_an_organisation_reaches_those_under_it_and_nothing_beside_it() -> None:
    assert domain_of("centre", DIRECTORY) == {"centre", "tc1", "tc2", "v1"}
    assert domain_of("tc1", DIRECTORY) == {"tc1", "v1"}
    assert domain_of("unknown", DIRECTORY) == {"unknown"}


def test_a_loop_in_the_directory_ends() -> None:
    looped = [org("a", "b"), org("b", "a"), org("c", "a")]
    assert domain_of("a", looped) == {"a", "b", "c"}


def test_a_scope_admits_by_county_organisation_and_mediator() -> None:
    scoped = Scope(counties=frozenset({"371302"}), organisations=frozenset({"tc1", "v1"}))
    assert scoped.admits({"county": "371302", "organisation_id": "v1"})
    assert not scoped.admits({"county": "371302", "organisation_id": "tc2"})
    assert not scoped.admits({"county": "371311", "organisation_id": "tc1"})
    assert scoped.admits({"county": "371302", "organisation_id": None})  # unrouted: the county's
    assert not scoped.acts_for(None) and not scoped.acts_for("tc2") and scoped.acts_for("tc1")
    county = Scope(counties=frozenset({"371302"}))
    assert county.admits({"county": "371302", "organisation_id": "tc2"}) and county.acts_for("tc2")
    mediator = Scope(counties=frozenset({"371302"}), mediator_id="m1", organisations=frozenset({"tc1"}))
    assert mediator.admits({"county": "371302", "organisation_id": "tc1", "mediator_id": "m1"})
    assert not mediator.admits({"county": "371302", "organisation_id": "tc1", "mediator_id": "m2"})
