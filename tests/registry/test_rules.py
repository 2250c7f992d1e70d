"""The registry's rules without servers: eligibility, matching, filing checks, the
compliance report and spreadsheet cell parsing."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from tiaojie.contracts.common import Category, MediatorStatus
from tiaojie.registry.compliance import ReportSettings, build_report, report_csv
from tiaojie.registry.eligibility import conflicted, effective_status, eligible, ineligibility
from tiaojie.registry.import_cells import MEDIATOR_COLUMNS, CellError, id_number_cell, parse_bool, parse_date
from tiaojie.registry.import_files import map_header, sniff_format
from tiaojie.registry.matching import CaseNeeds, Counts, Policy, explain, rank
from tiaojie.registry.models import MediatorDoc, MediatorIn, OrganisationDoc, OrganisationIn
from tiaojie.registry.validation import discipline_errors, mediator_errors, organisation_errors
from tiaojie.runtime.divisions import Divisions

pytestmark = pytest.mark.unit

TODAY = date(2026, 3, 2)
POLICY = Policy(
    required_grade={"grave": 2, "serious": 3},
    weights={"specialty": 0.3, "grade_fit": 0.1, "headroom": 0.3, "fairness": 0.3},
    default_capacity=20,
    part_time_capacity=8,
)


def med(mediator_id: str = "m", **fields: Any) -> MediatorDoc:
    base: dict[str, Any] = {
        "_id": mediator_id,
        "name": "调解员",
        "county": "371302",
        "organisation_ids": ["tc"],
        "full_time": True,
        "grade": "3",
        "certificate_number": "C1",
        "certificate_expires_on": "2027-12-31",
    }
    return MediatorDoc.model_validate({**base, **fields})


def needs(**fields: Any) -> CaseNeeds:
    return CaseNeeds(
        case_id=fields.pop("case_id", "c1"),
        category=fields.pop("category", Category.NEIGHBOURHOOD),
        risk_level=fields.pop("risk_level", "ordinary"),
        party_keys=frozenset(fields.pop("party_keys", ())),
    )


def discipline(sanction: str, starts: str, ends: str | None = None) -> dict[str, Any]:
    return {"id": "d", "prohibition": "gifts", "sanction": sanction, "starts_on": starts, "ends_on": ends}


# -- eligibility -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reasons"),
    [
        ({}, []),
        ({"status": "suspended"}, ["suspended"]),
        ({"status": "revoked"}, ["revoked"]),
        ({"certificate_number": None}, ["uncertified"]),
        ({"certificate_expires_on": None}, ["uncertified"]),
        ({"certificate_expires_on": "2026-03-01"}, ["certificate_expired"]),
        ({"certificate_expires_on": "2026-03-02"}, []),  # valid through its last day
        ({"certificate_issued_on": "2026-04-01"}, ["certificate_not_yet_valid"]),
        ({"discipline": [discipline("suspension", "2026-03-01", "2026-03-31")]}, ["suspended"]),
        ({"discipline": [discipline("suspension", "2026-04-01", "2026-04-30")]}, []),  # not yet
        ({"discipline": [discipline("suspension", "2026-01-01", "2026-03-01")]}, []),  # served
        ({"discipline": [discipline("dismissal", "2026-02-01")]}, ["revoked"]),
        ({"discipline": [discipline("warning", "2026-02-01")]}, []),
        (
            {"status": "suspended", "certificate_expires_on": "2025-01-01"},
            ["suspended", "certificate_expired"],
        ),
    ],
)
def test_eligibility_rules(fields: dict[str, Any], reasons: list[str]) -> None:
    m = med(**fields)
    assert ineligibility(m, today=TODAY) == reasons
    assert eligible(m, today=TODAY) is (not reasons)


def test_effective_status_follows_the_calendar() -> None:
    m = med(discipline=[discipline("suspension", "2026-03-10", "2026-03-20")])
    assert effective_status(m, today=date(2026, 3, 9)) == MediatorStatus.ACTIVE
    assert effective_status(m, today=date(2026, 3, 15)) == MediatorStatus.SUSPENDED
    assert effective_status(m, today=date(2026, 3, 21)) == MediatorStatus.ACTIVE


def test_conflict_of_interest_by_own_or_related_key() -> None:
    m = med(id_number_key="own", relations=[{"relation": "配偶", "key": "spouse"}])
    assert conflicted(m, {"own"}) and conflicted(m, {"x", "spouse"})
    assert not conflicted(m, {"stranger"}) and not conflicted(med(), set())


# -- matching ----------------------------------------------------------------------------------


def zero(*mediators: MediatorDoc, load: int = 0, recent: int = 0) -> dict[str, Counts]:
    return {m.id: Counts(load=load, recent=recent) for m in mediators}


@pytest.mark.parametrize(
    ("risk", "grades_ok"),
    [
        ("ordinary", {"1", "2", "3", "4", None}),
        ("serious", {"1", "2", "3"}),
        ("grave", {"1", "2"}),
    ],
)
def test_grade_required_by_risk(risk: str, grades_ok: set[str | None]) -> None:
    people = [med(f"m{g}", grade=g) for g in ("1", "2", "3", "4", None)]
    ranking = rank("tc", people, zero(*people), needs(risk_level=risk), today=TODAY, policy=POLICY)
    assert {p.grade for p in people if p.id in {c.mediator_id for c in ranking.ranked}} == grades_ok
    assert all(e.reasons == ["grade_below_required"] for e in ranking.excluded)


def test_capacity_defaults_by_employment_and_is_a_hard_limit() -> None:
    full, part, own = med("full"), med("part", full_time=False), med("own", capacity=2)
    assert [POLICY.capacity(m) for m in (full, part, own)] == [20, 8, 2]
    counts = {"full": Counts(19, 0), "part": Counts(8, 0), "own": Counts(2, 0)}
    ranking = rank("tc", [full, part, own], counts, needs(), today=TODAY, policy=POLICY)
    assert [c.mediator_id for c in ranking.ranked] == ["full"]
    assert {e.mediator_id: e.reasons for e in ranking.excluded} == {
        "part": ["at_capacity"],
        "own": ["at_capacity"],
    }


def test_specialty_outweighs_a_small_fairness_lead_but_not_a_large_one() -> None:
    expert, general = med("expert", specialties=["marriage_family"]), med("general")
    case = needs(category=Category.MARRIAGE_FAMILY)
    one_ahead = {"expert": Counts(0, 1), "general": Counts(0, 0)}
    assert (
        rank("tc", [expert, general], one_ahead, case, today=TODAY, policy=POLICY).ranked[0].mediator_id
        == "expert"
    )
    far_ahead = {"expert": Counts(0, 6), "general": Counts(0, 0)}
    assert (
        rank("tc", [expert, general], far_ahead, case, today=TODAY, policy=POLICY).ranked[0].mediator_id
        == "general"
    )


def test_same_state_same_choice_whatever_the_order() -> None:
    people = [med(f"m{i}") for i in range(6)]
    first = rank("tc", people, zero(*people), needs(case_id="c-42"), today=TODAY, policy=POLICY)
    second = rank(
        "tc", list(reversed(people)), zero(*people), needs(case_id="c-42"), today=TODAY, policy=POLICY
    )
    assert [c.mediator_id for c in first.ranked] == [c.mediator_id for c in second.ranked]
    # Ties are not broken by the id's spelling: different cases start with different people.
    starts = {
        rank("tc", people, zero(*people), needs(case_id=f"c-{n}"), today=TODAY, policy=POLICY)
        .ranked[0]
        .mediator_id
        for n in range(60)
    }
    assert len(starts) == 6


def test_fairness_over_one_thousand_assignments_in_the_rules_alone() -> None:
    rng = random.Random(7)
    people = [med(f"m{i}", capacity=500) for i in range(5)]
    close_rate = {"m0": 1.0, "m1": 0.7, "m2": 0.4, "m3": 0.1, "m4": 0.0}
    load: Counter[str] = Counter()
    received: Counter[str] = Counter()
    for n in range(1000):
        counts = {m.id: Counts(load=load[m.id], recent=received[m.id]) for m in people}
        chosen = rank("tc", people, counts, needs(case_id=f"c{n}"), today=TODAY, policy=POLICY).ranked[0]
        received[chosen.mediator_id] += 1
        load[chosen.mediator_id] += 1
        if rng.random() < close_rate[chosen.mediator_id]:
            load[chosen.mediator_id] -= 1
    assert max(received.values()) - min(received.values()) <= 2  # 199..201 of 1,000


def test_the_breakdown_and_the_explanation_say_why() -> None:
    m = med("m", specialties=["neighbourhood"])
    chosen = rank("tc", [m], {"m": Counts(3, 12)}, needs(), today=TODAY, policy=POLICY).ranked[0]
    assert chosen.breakdown["specialty"] == 1.0 and chosen.breakdown["load"] == 3.0
    assert chosen.breakdown["headroom"] == 0.85 and chosen.breakdown["recent_assignments"] == 12.0
    text = explain(
        m, chosen, needs(), organisation_name="测试委员会", escalated_from_name=None, window_days=90
    )
    assert "擅长邻里纠纷" in text and "当前在办3件（上限20件）" in text and "近90天分配12件" in text


# -- filing checks --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def divisions(divisions_dir: Path) -> Divisions:
    return Divisions.load(divisions_dir)


def org(**fields: Any) -> OrganisationIn:
    base = {
        "name": "测试街道人民调解委员会",
        "short_name": "测街",
        "kind": "township_committee",
        "level": "township",
        "county": "371302",
        "division_code": "371302001",
    }
    return OrganisationIn.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "codes"),
    [
        ({}, []),
        ({"county": "371399"}, ["unknown_county"]),
        ({"division_code": "371311001"}, ["division_outside_county"]),
        ({"division_code": "371302999"}, ["unknown_division"]),
        ({"division_code": "371302"}, ["division_length"]),
        ({"kind": "centre", "level": "county", "division_code": "371311"}, ["division_not_county"]),
        ({"kind": "centre", "level": "city", "division_code": "371300"}, []),
        ({"kind": "centre", "level": "city", "division_code": "370100"}, ["division_not_city"]),
        ({"level": "county", "division_code": "371302"}, ["level_not_allowed"]),
        (
            {"kind": "industry_committee", "level": "county", "division_code": "371302"},
            ["categories_required"],
        ),
        ({"kind": "stationed_room", "level": "county", "division_code": "371302"}, ["stationed_at_required"]),
        ({"kind": "personal_room"}, ["brand_name_required"]),
        ({"filed_on": "2026-03-03"}, ["date_in_future"]),
    ],
)
def test_organisation_filing_rules(divisions: Divisions, fields: dict[str, Any], codes: list[str]) -> None:
    assert [e.code for e in organisation_errors(org(**fields), divisions=divisions, today=TODAY)] == codes


def mediator_in(**fields: Any) -> MediatorIn:
    return MediatorIn.model_validate(
        {"name": "调解员", "county": "371302", "organisation_ids": ["tc"], **fields}
    )


@pytest.mark.parametrize(
    ("fields", "codes"),
    [
        ({"grade": "1"}, []),  # the evaluating level follows from the grade
        ({"grade": "1", "grade_level": "county"}, ["grade_level_mismatch"]),
        ({"grade": "3", "grade_level": "city"}, ["grade_level_mismatch"]),
        (
            {"grade": "4", "graded_on": "2025-06-01", "service_started_on": "2024-06-02"},
            ["service_under_one_year"],
        ),
        ({"grade": "4", "graded_on": "2025-06-01", "service_started_on": "2024-06-01"}, []),
        ({"graded_on": "2025-06-01"}, ["grade_missing"]),
        ({"grade": "4", "service_started_on": "2025-06-01"}, ["service_under_one_year"]),
        ({"grade": "4", "service_started_on": "2025-03-02"}, []),
        ({"certificate_expires_on": "2027-01-01"}, ["certificate_number_missing"]),
        ({"certificate_number": "C1"}, ["certificate_expiry_missing"]),
        (
            {
                "certificate_number": "C1",
                "certificate_issued_on": "2027-01-01",
                "certificate_expires_on": "2026-12-31",
            },
            ["certificate_dates_order"],
        ),
        ({"service_started_on": "2026-05-01"}, ["date_in_future"]),
    ],
)
def test_mediator_filing_rules(fields: dict[str, Any], codes: list[str]) -> None:
    assert [e.code for e in mediator_errors(mediator_in(**fields), today=TODAY)] == codes


def test_a_suspension_needs_its_period() -> None:
    from tiaojie.registry.models import Sanction

    assert [e.code for e in discipline_errors(Sanction.SUSPENSION, TODAY, None)] == ["period_required"]
    assert [e.code for e in discipline_errors(Sanction.WARNING, TODAY, date(2026, 1, 1))] == ["period_order"]
    assert discipline_errors(Sanction.DISMISSAL, TODAY, None) == []


# -- compliance -------------------------------------------------------------------------------------


def test_compliance_report_against_the_norms(divisions: Divisions) -> None:
    def o(oid: str, kind: str, level: str, code: str, **extra: Any) -> OrganisationDoc:
        return OrganisationDoc.model_validate(
            {
                "_id": oid,
                "name": oid,
                "short_name": oid,
                "kind": kind,
                "level": level,
                "county": "371302",
                "division_code": code,
                **extra,
            }
        )

    orgs = [
        o("centre", "centre", "county", "371302"),
        o("medical", "industry_committee", "county", "371302", categories=["medical"]),
        o("tc", "township_committee", "township", "371302001"),
        o("village", "village_committee", "village", "371302001001"),
    ]
    training = [
        {"id": "t1", "course": "调解技巧", "hours": 8, "on": "2026-01-10"},
        {"id": "t2", "course": "旧课程", "hours": 40, "on": "2025-05-01"},
    ]
    people = [
        med("c1", organisation_ids=["centre"], grade="1", training=training),
        med("c2", organisation_ids=["centre"], grade="2", certificate_expires_on="2026-05-01"),
        med("c3", organisation_ids=["centre"], full_time=False, certificate_number=None),
        med("t1", organisation_ids=["tc", "village"], grade="3"),
        med("t2", organisation_ids=["tc"], grade="4", status="suspended"),
        *[med(f"v{i}", organisation_ids=["village"], grade=None, full_time=False) for i in range(9)],
    ]
    report = build_report(
        county="371302",
        organisations=orgs,
        mediators=people,
        divisions=divisions,
        today=TODAY,
        settings=ReportSettings(),
    )
    gaps = {(c["norm"], c["organisation_id"] or c["scope"]): c["gap"] for c in report["norm_checks"]}
    assert gaps == {
        ("county_centre", "centre"): 3,  # two active full-time of five
        ("industry", "medical"): 3,
        ("township", "371302001"): 1,  # t2 is suspended
        ("village", "village"): 0,  # t1 serves the village too
    }
    assert report["gaps"] == {"village": 0, "township": 1, "industry": 3, "county_centre": 3}
    summary = report["summary"]
    assert summary["mediators"] == 14 and summary["status"]["suspended"] == 1
    assert summary["certified"] == 13 and summary["certificate_coverage"] == round(13 / 14, 4)
    assert summary["training_hours"] == 8.0  # last year's course does not count
    assert summary["grades"] == {"1": 1, "2": 1, "3": 2, "4": 1, "none": 9}
    assert [e["mediator_id"] for e in report["expiring_certificates"]] == ["c2"]
    assert {c["organisation_id"]: c["check"] for c in report["committee_size"]} == {
        "medical": "too_few",
        "tc": "too_few",
        "village": "too_many",
    }
    township = report["townships"][0]
    assert township["division_code"] == "371302001" and township["mediators"] == 11 and township["gap"] == 1
    text = report_csv(report)
    assert text.startswith("\ufeff") and "配备标准 (norm)" in text and "证书90天内到期" in text


def test_the_compliance_report_checks_the_centre_the_directory_names(divisions: Divisions) -> None:
    def centre(oid: str, **extra: Any) -> OrganisationDoc:
        return OrganisationDoc.model_validate(
            {
                "_id": oid,
                "name": oid,
                "short_name": oid,
                "kind": "centre",
                "level": "county",
                "county": "371302",
                "division_code": "371302",
                **extra,
            }
        )

    # An inactive centre and a second active one: the norm is checked for the centre the
    # county's cases escalate to (tiaojie.runtime.directory.county_centre), once.
    orgs = [centre("a-closed", active=False), centre("b-centre"), centre("c-centre")]
    report = build_report(
        county="371302",
        organisations=orgs,
        mediators=[med("c1", organisation_ids=["b-centre"])],
        divisions=divisions,
        today=TODAY,
        settings=ReportSettings(),
    )
    assert [(c["norm"], c["organisation_id"], c["gap"]) for c in report["norm_checks"]] == [
        ("county_centre", "b-centre", 4)
    ]


# -- spreadsheet cells --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-15", "2024-01-15"),
        ("2024/1/5", "2024-01-05"),
        ("2024年1月5日", "2024-01-05"),
        ("2024.01.05", "2024-01-05"),
        (datetime(2024, 1, 5, 0, 0), "2024-01-05"),
        (None, None),
    ],
)
def test_dates_as_bureaus_write_them(raw: Any, expected: str | None) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["明年", "2024-02-30", "15/01/2024"])
def test_bad_dates_are_reported(raw: str) -> None:
    with pytest.raises(CellError):
        parse_date(raw)


def test_yes_no_id_numbers_and_formats() -> None:
    assert parse_bool("是") is True and parse_bool("未备案") is False and parse_bool(None) is None
    with pytest.raises(CellError):
        parse_bool("也许")
    with pytest.raises(CellError) as caught:
        id_number_cell(371302198001011239.0)
    assert caught.value.code == "id_number_as_number"
    assert sniff_format(b"PK\x03\x04...", None) == "xlsx" and sniff_format("姓名".encode(), None) == "csv"


def test_header_mapping_reports_unknown_duplicate_and_missing_columns() -> None:
    mapping, issues = map_header(["姓名", "name", "备注", "所属县区代码"], MEDIATOR_COLUMNS)
    assert {(i.column, i.code) for i in issues} == {
        ("name", "duplicate_column"),
        ("备注", "unknown_column"),
        ("身份证号码", "missing_column"),
        ("所属调解组织", "missing_column"),
    }
    assert [c.field for c in mapping.values()] == ["name", "county"]
