"""The case lifecycle as a state machine (DESIGN.md §2): which action is allowed in which
state and where it leads. An action not in the table is a 409 naming the current state.

received ─accept→ accepted ─(mediator recorded)→ assigned ─session→ in_mediation
   │                                                        ├─resolve→ resolved ─┐
   └─reject→ rejected                                       └─fail→ failed ──────┤
                                                       follow_up → followed_up ─archive→ archived
withdraw: from any open stage → withdrawn.   transfer (by referral): see service.transfer.

A mediator recorded while the case is still `received` is kept as a pre-assignment; on
acceptance the case goes straight on to `assigned` (CaseAccepted, then
CaseAssignmentRecorded). After a transfer of an accepted case the status is
`transferred` until the receiving organisation's mediator is recorded (→ assigned).
"""

from __future__ import annotations

from tiaojie.contracts.common import CASE_STATUS_LABELS, CaseStatus
from tiaojie.runtime.errors import IllegalTransition

S = CaseStatus

OPEN = frozenset({S.RECEIVED, S.ACCEPTED, S.ASSIGNED, S.IN_MEDIATION, S.TRANSFERRED})
CLOSED = frozenset({S.REJECTED, S.RESOLVED, S.FAILED, S.FOLLOWED_UP, S.ARCHIVED, S.WITHDRAWN})
# States in which the mediation clock runs (or is paused) and can be changed.
CLOCKED = frozenset({S.ACCEPTED, S.ASSIGNED, S.IN_MEDIATION, S.TRANSFERRED})

# action -> (states it is allowed from, the state it leads to; None keeps the state)
TRANSITIONS: dict[str, tuple[frozenset[CaseStatus], CaseStatus | None]] = {
    "accept": (frozenset({S.RECEIVED}), S.ACCEPTED),
    "reject": (frozenset({S.RECEIVED}), S.REJECTED),
    "record_session": (frozenset({S.ASSIGNED, S.IN_MEDIATION}), S.IN_MEDIATION),
    "resolve": (frozenset({S.IN_MEDIATION}), S.RESOLVED),
    "fail": (frozenset({S.IN_MEDIATION}), S.FAILED),
    "record_performance": (frozenset({S.RESOLVED, S.FOLLOWED_UP}), None),
    "follow_up": (frozenset({S.RESOLVED, S.FAILED}), S.FOLLOWED_UP),
    "archive": (frozenset({S.FOLLOWED_UP}), S.ARCHIVED),
    "withdraw": (OPEN, S.WITHDRAWN),
    "transfer": (OPEN, None),
    "pause_clock": (CLOCKED, None),
    "resume_clock": (CLOCKED, None),
    "extend_clock": (CLOCKED, None),
    "set_category": (OPEN, None),
    "nominate": (frozenset({S.ARCHIVED, S.WITHDRAWN}), None),
    "add_document": (OPEN | frozenset({S.RESOLVED, S.FAILED, S.FOLLOWED_UP, S.REJECTED, S.WITHDRAWN}), None),
}

ACTION_LABELS: dict[str, str] = {
    "accept": "受理",
    "reject": "不予受理",
    "record_session": "记录调解",
    "resolve": "调解成功结案",
    "fail": "调解不成结案",
    "record_performance": "记录协议履行",
    "follow_up": "回访",
    "archive": "归档",
    "withdraw": "撤回",
    "transfer": "转办",
    "pause_clock": "暂停调解期限",
    "resume_clock": "恢复调解期限",
    "extend_clock": "延长调解期限",
    "set_category": "修改纠纷类别",
    "nominate": "推荐入选典型案例",
    "add_document": "添加卷宗材料",
}


def illegal(action: str, current: CaseStatus) -> IllegalTransition:
    """409 naming the current state, in Chinese and English."""
    error = IllegalTransition(current=str(current), action=action, current_zh=CASE_STATUS_LABELS[current])
    error.zh = f"当前状态为“{CASE_STATUS_LABELS[current]}”，不能{ACTION_LABELS[action]}"
    error.context["current_state_label"] = CASE_STATUS_LABELS[current]
    return error


def check(action: str, current: CaseStatus) -> CaseStatus:
    """The state an action leads to from the current one, or IllegalTransition (409)."""
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        raise illegal(action, current)
    return target or current
