"""A scripted history with figures computed by hand (see the comments), shared by the
unit test of the rules and the integration test through Kafka and the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, CaseStatus, Category, Channel
from tiaojie.contracts.envelope import EventData
from tiaojie.contracts.intake import (
    AgreementPerformed,
    CaseAccepted,
    CaseAssignmentRecorded,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseWithdrawn,
    DeadlineChanged,
    SessionRecorded,
)
from tiaojie.contracts.referral import (
    DeadlineOverdue,
    ReferralAccepted,
    ReferralClosed,
    ReferralDeclined,
    ReferralRequested,
)
from tiaojie.contracts.registry import MediatorAssigned

COUNTY = "371399"  # not a real county: no other test or service writes it
TOWNSHIP = "371399001"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Linyi
NOW = T0 + timedelta(days=60)
D, H = timedelta(days=1), timedelta(hours=1)


def case_id(n: int, prefix: str = "") -> str:
    return f"{prefix}case-{n}"


def history(prefix: str = "", county: str = COUNTY) -> list[tuple[str, str, EventData]]:
    """(topic, key, event) in the order intake, the registry and referral would publish."""
    township = county + "001"
    out: list[tuple[str, str, EventData]] = []

    def reg(n: int, at: datetime) -> None:
        out.append(
            (
                topics.CASES,
                case_id(n, prefix),
                CaseRegistered(
                    case_id=case_id(n, prefix),
                    channel=Channel.DESK,
                    county=county,
                    township=township,
                    category=Category.NEIGHBOURHOOD if n % 2 else Category.LABOUR,
                    organisation_id=f"org-{township}-tc",
                    received_at=at,
                    acceptance_due=at + 3 * D,
                ),
            )
        )

    def life(n: int, model: type, status: CaseStatus, at: datetime, **extra: object) -> None:
        out.append(
            (
                topics.CASES,
                case_id(n, prefix),
                model(
                    case_id=case_id(n, prefix),
                    county=county,
                    township=township,
                    organisation_id=f"org-{township}-tc",
                    status=status,
                    at=at,
                    **extra,
                ),
            )
        )

    def propose(n: int, at: datetime) -> None:
        # The registry's proposal at registration, before acceptance: not an assignment.
        out.append(
            (
                topics.ASSIGNMENTS,
                case_id(n, prefix),
                MediatorAssigned(
                    case_id=case_id(n, prefix),
                    county=county,
                    organisation_id=f"org-{township}-tc",
                    mediator_id="med-1",
                    mediator_name="调解员",
                    score=1.0,
                    assigned_at=at,
                ),
            )
        )

    def assign(n: int, at: datetime) -> None:
        # The case becomes assigned when intake records it, after acceptance.
        life(n, CaseAssignmentRecorded, CaseStatus.ASSIGNED, at, mediator_id="med-1")

    def accept(n: int, at: datetime) -> None:
        life(
            n,
            CaseAccepted,
            CaseStatus.ACCEPTED,
            at,
            case_number=f"(2026)测人调字第{n}号",
            mediation_due=at + 30 * D,
        )

    # c1: proposed a mediator at once; accepted after 1 d, assigned 26 h, first session 3 d,
    # resolved 10 d, performed 20 d.
    reg(1, T0)
    propose(1, T0 + timedelta(minutes=1))
    accept(1, T0 + D)
    assign(1, T0 + D + 2 * H)
    life(1, SessionRecorded, CaseStatus.IN_MEDIATION, T0 + 3 * D, session_number=1, held_at=T0 + 3 * D)
    life(1, CaseResolved, CaseStatus.RESOLVED, T0 + 10 * D, agreement_form="written")
    life(1, AgreementPerformed, CaseStatus.RESOLVED, T0 + 20 * D)
    # c2: received +1 h; accepted 2 d - 1 h; assigned 2 d; session 5 d - 1 h; failed 15 d - 1 h.
    reg(2, T0 + H)
    accept(2, T0 + 2 * D)
    assign(2, T0 + 2 * D + H)
    life(2, SessionRecorded, CaseStatus.IN_MEDIATION, T0 + 5 * D, session_number=1, held_at=T0 + 5 * D)
    life(2, CaseFailed, CaseStatus.FAILED, T0 + 15 * D, route="litigation")
    # c3: received +2 h; accepted 3 d - 2 h; assigned same; session 6 d - 2 h; resolved 40 d - 2 h (late).
    reg(3, T0 + 2 * H)
    accept(3, T0 + 3 * D)
    assign(3, T0 + 3 * D)
    life(3, SessionRecorded, CaseStatus.IN_MEDIATION, T0 + 6 * D, session_number=1, held_at=T0 + 6 * D)
    life(3, CaseResolved, CaseStatus.RESOLVED, T0 + 40 * D, agreement_form="oral")
    # c4: rejected.
    reg(4, T0 + 3 * H)
    life(4, CaseRejected, CaseStatus.REJECTED, T0 + D, reason_code="not_civil")
    # c5: accepted late (5 d - 4 h > 3 d), withdrawn.
    reg(5, T0 + 4 * H)
    accept(5, T0 + 5 * D)
    life(5, CaseWithdrawn, CaseStatus.WITHDRAWN, T0 + 8 * D, previous_status=CaseStatus.ACCEPTED)
    # c6: never accepted: overdue for acceptance at NOW.
    reg(6, T0 + 5 * H)
    # c7: accepted 1 d - 6 h, mediation due T0 + 31 d: overdue at NOW; proposed, never assigned.
    reg(7, T0 + 6 * H)
    propose(7, T0 + 6 * H + timedelta(minutes=1))
    accept(7, T0 + D)
    # c8: accepted 1 d - 7 h, clock paused: open, not overdue.
    reg(8, T0 + 7 * H)
    accept(8, T0 + D)
    life(8, DeadlineChanged, CaseStatus.ACCEPTED, T0 + 2 * D, clock="mediation", change="paused")

    def ref(rid: str, model: type, **fields: object) -> None:
        out.append((topics.REFERRALS, rid, model(referral_id=rid, county=county, **fields)))

    r = f"{prefix}ref-"
    ref(
        r + "1",
        ReferralRequested,
        agency_kind=AgencyKind.COURT,
        referral_kind="delegation",
        organisation_id="org-c",
        requested_at=T0,
        response_due=T0 + D,
    )
    ref(
        r + "1",
        ReferralAccepted,
        agency_kind=AgencyKind.COURT,
        referral_kind="delegation",
        organisation_id="org-c",
        submission_enc="x",
        accepted_at=T0 + 4 * H,
    )
    ref(
        r + "2",
        ReferralRequested,
        agency_kind=AgencyKind.COURT,
        referral_kind="delegation",
        organisation_id="org-c",
        requested_at=T0 + D,
        response_due=T0 + 2 * D,
    )
    ref(
        r + "2",
        ReferralDeclined,
        agency_kind=AgencyKind.COURT,
        organisation_id="org-c",
        reason="out_of_scope",
        declined_at=T0 + D + 8 * H,
    )
    ref(
        r + "3",
        ReferralRequested,
        agency_kind=AgencyKind.POLICE,
        referral_kind="police",
        organisation_id="org-c",
        requested_at=T0 + 2 * D,
        response_due=T0 + 3 * D,
    )
    ref(
        r + "3",
        ReferralAccepted,
        agency_kind=AgencyKind.POLICE,
        referral_kind="police",
        organisation_id="org-c",
        submission_enc="x",
        accepted_at=T0 + 2 * D + 2 * H,
    )
    ref(r + "3", ReferralClosed, agency_kind=AgencyKind.POLICE, outcome="resolved", closed_at=T0 + 20 * D)
    ref(
        r + "4",
        ReferralRequested,
        referral_kind="lateral",
        organisation_id="org-c",
        requested_at=T0 + 3 * D,
        response_due=T0 + 4 * D,
    )
    out.append(
        (
            topics.REFERRALS,
            r + "4",
            DeadlineOverdue(
                subject_id=r + "4",
                subject_kind="referral",
                county=county,
                stage="response",
                due=T0 + 4 * D,
                overdue_at=T0 + 4 * D,
            ),
        )
    )
    return out


def q(values: list[float], p: float) -> float:
    """Type-7 quantile, written out for the hand computations below."""
    values = sorted(values)
    pos = (len(values) - 1) * p
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


HOUR, DAY = 3600.0, 86400.0
# Hand-computed: seconds from registration, per case.
ACCEPT = [1 * DAY, 2 * DAY - HOUR, 3 * DAY - 2 * HOUR, 5 * DAY - 4 * HOUR, DAY - 6 * HOUR, DAY - 7 * HOUR]
ASSIGN = [DAY + 2 * HOUR, 2 * DAY, 3 * DAY - 2 * HOUR]
FIRST_SESSION = [3 * DAY, 5 * DAY - HOUR, 6 * DAY - 2 * HOUR]
RESOLVE = [10 * DAY, 15 * DAY - HOUR, 40 * DAY - 2 * HOUR]
EXPECTED = {
    "received": 8,
    "accepted": 6,
    "rejected": 1,
    "assigned": 3,
    "resolved": 2,
    "failed": 1,
    "withdrawn": 1,
    "agreements_performed": 1,
    "success_rate": 2 / 3,
    # sorted ACCEPT: 61200, 64800, 86400, 169200, 252000, 417600 -> median (86400 + 169200) / 2
    "time_to_accept_seconds": {"count": 6, "median": 127800.0, "p90": 334800.0},
    # sorted ASSIGN: 93600, 172800, 252000 -> p90 at position 1.8: 172800 + 0.8 * 79200
    "time_to_assign_seconds": {"count": 3, "median": 172800.0, "p90": 236160.0},
    "time_to_first_session_seconds": {"count": 3, "median": 428400.0, "p90": 494640.0},
    # sorted RESOLVE: 864000, 1292400, 3448800 -> p90: 1292400 + 0.8 * 2156400
    "time_to_resolve_seconds": {"count": 3, "median": 1292400.0, "p90": 3017520.0},
    "timeliness": {"accepted_on_time": 5, "accepted_late": 1, "concluded_on_time": 2, "concluded_late": 1},
    "open_now": 3,  # c6 received, c7 and c8 accepted
    "overdue_now": {"acceptance": 1, "mediation": 1, "total": 2},  # c6, c7 (c8 paused)
}
EXPECTED_REFERRALS = {
    "court": {
        "requested": 2,
        "accepted": 1,
        "declined": 1,
        "closed": 0,
        "resolved": 0,
        "overdue_now": 0,
        "response_seconds": {"count": 2, "median": 6 * HOUR, "p90": 4 * HOUR + 0.9 * 4 * HOUR},
    },
    "police": {
        "requested": 1,
        "accepted": 1,
        "declined": 0,
        "closed": 1,
        "resolved": 1,
        "overdue_now": 0,
        "response_seconds": {"count": 1, "median": 2 * HOUR, "p90": 2 * HOUR},
    },
    "internal": {
        "requested": 1,
        "accepted": 0,
        "declined": 0,
        "closed": 0,
        "resolved": 0,
        "overdue_now": 1,
        "response_seconds": {"count": 0, "median": None, "p90": None},
    },
}
assert q(ACCEPT, 0.5) == EXPECTED["time_to_accept_seconds"]["median"]
assert q(ACCEPT, 0.9) == EXPECTED["time_to_accept_seconds"]["p90"]
assert q(ASSIGN, 0.9) == EXPECTED["time_to_assign_seconds"]["p90"]
assert q(FIRST_SESSION, 0.9) == EXPECTED["time_to_first_session_seconds"]["p90"]
assert q(RESOLVE, 0.9) == EXPECTED["time_to_resolve_seconds"]["p90"]
