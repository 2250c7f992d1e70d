"""Intake rules: register (validate, protect, deduplicate, classify, rate, route), accept
or reject with a case number, follow the lifecycle to the archive, and react to the
registry's assignments and referral's hand-overs. No Kafka or HTTP in here: events leave
through the case document's outbox.

Every change of a case is one conditional write of its document (optimistic
concurrency on `version`) carrying the events it causes; every action has an id, kept
on the case, so a retried request or a redelivered event has no second effect, and its
events have deterministic ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tiaojie.contracts import topics
from tiaojie.contracts.common import (
    CASE_STATUS_LABELS,
    CaseStatus,
    Category,
    Channel,
    RiskLevel,
)
from tiaojie.contracts.envelope import CloudEvent, EventData, derived_id, new_event
from tiaojie.contracts.intake import (
    AgreementPerformed,
    CaseAccepted,
    CaseArchived,
    CaseAssignmentRecorded,
    CaseEvent,
    CaseFailed,
    CaseNominated,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    DeadlineChanged,
    DisputeSubmission,
    DuplicateLinked,
    FollowUpRecorded,
    NominatedContent,
    NominatedSession,
    PartyIn,
    RiskRaised,
    SessionRecorded,
)
from tiaojie.contracts.referral import ReferralAccepted, TransferAccepted
from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned, OrganisationUpdated
from tiaojie.intake import casefile, lifecycle, routing
from tiaojie.intake.classifier import Classification, Classifier
from tiaojie.intake.lifecycle import OPEN
from tiaojie.intake.metrics import IntakeMetrics
from tiaojie.intake.models import (
    Agreement,
    Assignment,
    AssignmentFailure,
    CaseDoc,
    DocumentRef,
    DuplicateLink,
    Extension,
    Failure,
    FollowUp,
    HistoryEntry,
    MediationClock,
    Pause,
    Performance,
    Rejection,
    RiskSignalDoc,
    Session,
    StoredParty,
    Transfer,
)
from tiaojie.intake.repository import IntakeRepository, Scope
from tiaojie.intake.risk import RiskInput, RiskPolicy, rate
from tiaojie.intake.settings import IntakeSettings
from tiaojie.intake.validation import normalise_name, validate_submission
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.consumer import DeadLetter
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import Conflict, FieldError, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import OUTBOX, Document, OutboxRelay
from tiaojie.runtime.pii import Protector, id_birth_date, normalise_id_number, normalise_mobile, scrub

log = get_logger(__name__)

SOURCE = topics.service_source("intake")
SYSTEM = "system:intake"
_CASE_NS = uuid.UUID("0b6f7f4e-4a0e-4b7e-9d53-6c1f0f1e2a10")
_TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TRACKING_LENGTH = 10  # 32^10 ≈ 10^15 codes: guessing one is hopeless at any request rate
_MAX_ATTEMPTS = 25

# 不予受理 reasons (the fixed list), with the wording the applicant is told.
REJECTION_REASONS: dict[str, str] = {
    "outside_scope": "不属于人民调解受理范围",
    "in_litigation": "已经进入诉讼程序",
    "in_arbitration": "已经进入仲裁程序",
    "handled_by_other_body": "已由其他机关或组织受理、处理",
    "party_refuses": "一方当事人明确拒绝调解",
    "statutory_other_channel": "法律法规规定应由专门机关管辖处理",
    "insufficient_information": "申请材料不全且经告知未补正",
    "other": "其他原因",
}
FAILURE_ROUTES: dict[str, str] = {
    "litigation": "引导通过诉讼途径解决",
    "arbitration": "引导申请仲裁",
    "administrative": "引导通过行政途径（行政裁决、复议、信访等）解决",
    "other": "其他途径",
}
AGREEMENT_FORMS: dict[str, str] = {"oral": "口头协议", "written": "书面协议"}
FOLLOW_UP_METHODS: dict[str, str] = {
    "phone": "电话回访",
    "visit": "上门回访",
    "online": "网上回访",
    "other": "其他",
}


@dataclass(frozen=True)
class Registration:
    case: CaseDoc
    created: bool
    linked: bool = False  # linked to an open case as a duplicate


@dataclass
class Change:
    """What one action does to a case: fields to set and append, and its events."""

    status: CaseStatus
    note: str = ""
    sets: dict[str, Any] = field(default_factory=dict)
    push: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[type[CaseEvent], dict[str, Any]]] = field(default_factory=list)
    # Events that are not lifecycle events of intake.cases.v1: built from the case after
    # the change, with the id the event must have.
    others: list[tuple[str, Callable[[CaseDoc], EventData], str]] = field(default_factory=list)


def case_id_for(*, scope: str, key: str) -> str:
    """Deterministic case id for an idempotent submission (HTTP key or Kafka event id)."""
    return str(uuid.uuid5(_CASE_NS, f"{scope}\x00{key}"))


def action_id_for(*, scope: str, key: str | None) -> str:
    """Id of an action: deterministic for an Idempotency-Key or an event, else fresh."""
    return str(uuid.uuid5(_CASE_NS, f"action\x00{scope}\x00{key}")) if key else str(uuid.uuid4())


def request_hash(submission: DisputeSubmission) -> str:
    return hashlib.sha256(
        orjson.dumps(submission.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def new_tracking_code() -> str:
    return "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(TRACKING_LENGTH))


def normalise_tracking_code(raw: str) -> str | None:
    code = raw.strip().upper().replace("-", "").replace(" ", "")
    if len(code) != TRACKING_LENGTH or any(c not in _TRACKING_ALPHABET for c in code):
        return None
    return code


def format_case_number(*, year: int, short_name: str, n: int) -> str:
    """(2026)临兰人调字第123号: year, organisation short name, 人调字, sequence."""
    return f"({year}){short_name}人调字第{n}号"


class IntakeService:
    """The intake rules; no Kafka or HTTP in here (events leave through the outbox)."""

    def __init__(
        self,
        *,
        repository: IntakeRepository,
        relay: OutboxRelay,
        protector: Protector,
        divisions: Divisions,
        settings: IntakeSettings,
        clock: Clock,
        metrics: IntakeMetrics,
        classifier: Classifier | None = None,
    ) -> None:
        self.repo = repository
        self.relay = relay
        self.protector = protector
        self.divisions = divisions
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.classifier = classifier or Classifier()
        self.tz = ZoneInfo(settings.timezone)
        self.risk_policy = RiskPolicy(
            group_size=settings.group_size,
            large_amount=settings.large_amount,
            very_large_amount=settings.very_large_amount,
            repeat_visits=settings.repeat_visits,
        )

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    # -- registration -----------------------------------------------------------------
    async def register(
        self,
        *,
        submission: DisputeSubmission,
        registered_by: str,
        case_id: str | None = None,
        http: bool = False,
        category_authority: str = "applicant",
        channel: Channel | None = None,
        organisation_id: str | None = None,
        referral_id: str | None = None,
        referral_due: datetime | None = None,
        referral_kind: str | None = None,
    ) -> Registration:
        """Register a dispute: validate, protect, link a duplicate or store a new case with
        its CaseRegistered (and RiskRaised when grave) event."""
        channel = channel or submission.channel
        errors = validate_submission(
            submission, divisions=self.divisions, today=self.today(), http=http, channel=channel
        )
        if errors:
            for error in errors:
                self.metrics.validation_failures.labels(channel, error.field.split(".")[0]).inc()
            raise Invalid(errors)
        case_id = case_id or str(uuid.uuid4())
        digest = request_hash(submission)
        existing = await self.repo.get_case(case_id)
        if existing is not None:
            return await self._replayed(existing, digest)
        linked_to = await self.repo.link_of(case_id)
        if linked_to is not None:
            linked = await self.repo.get_case(linked_to)
            if linked is not None:
                return Registration(case=linked, created=False, linked=True)

        now = self.clock.now()
        parties = [self._protect("applicant", p) for p in submission.applicants] + [
            self._protect("respondent", p) for p in submission.respondents
        ]
        suggestion = self.classifier.classify(submission.description)
        category, source, confidence = self._decide_category(
            submission.category, suggestion, category_authority
        )
        fingerprints = self._fingerprints(parties, category)
        seen: dict[str, Document | None] = {}
        duplicate = await self._open_duplicate(fingerprints, now, seen=seen)
        if duplicate is not None:
            return await self._link_duplicate(
                duplicate,
                submission_id=case_id,
                channel=channel,
                by=registered_by,
                parties=parties,
                referral_id=referral_id,
            )

        applicant_keys = [p.identity_key for p in parties if p.role == "applicant" and p.identity_key]
        prior = await self._prior_visits(applicant_keys, now=now, excluding=case_id)
        rating = rate(
            RiskInput(
                description=submission.description,
                parties_count=len(parties),
                amount=submission.amount,
                vulnerable_parties=sum(1 for p in parties if p.vulnerable),
                birth_dates=[
                    id_birth_date(normalise_id_number(p.id_number))
                    for p in (*submission.applicants, *submission.respondents)
                    if p.id_number and p.kind == "person"
                ],
                prior_visits=prior,
                today=self.today(),
            ),
            self.risk_policy,
        )
        cross_county = any(c != submission.county for c in submission.related_counties)
        if organisation_id is not None:
            chosen = await self.repo.get_organisation(organisation_id)
            route = routing.Route(chosen, "referral", "移交方指定的受理组织")
            route_id: str | None = organisation_id
        else:
            # One read serves both: a township (validated to lie in the county) has its
            # organisations among the county's.
            in_county = await self.repo.organisations_in(submission.county)
            township_code = submission.township[:9] if submission.township else None
            route = routing.route(
                county=submission.county,
                township=submission.township,
                category=category,
                risk_level=rating.level,
                cross_county=cross_county,
                in_county=in_county,
                at_township=[o for o in in_county if township_code and o.division_code == township_code],
            )
            route_id = route.organisation.id if route.organisation else None
        case = CaseDoc(
            id=case_id,
            tracking_code=new_tracking_code(),
            status=CaseStatus.RECEIVED,
            channel=channel,
            county=submission.county,
            township=submission.township,
            category=category,
            category_confidence=confidence,
            category_source=source,
            category_evidence=suggestion.evidence,
            category_suggested=suggestion.category,
            risk_level=rating.level,
            risk_signals=rating.codes,
            risk_details=[RiskSignalDoc(**vars(s)) for s in rating.signals],
            description=submission.description,
            amount=submission.amount,
            occurred_on=submission.occurred_on,
            address_enc=self.protector.encrypt(submission.address) if submission.address else None,
            external_ref=submission.external_ref,
            related_counties=list(submission.related_counties),
            parties=parties,
            organisation_id=route_id,
            routing_reason=route.reason_zh,
            received_at=now,
            acceptance_due=now + timedelta(days=self.settings.acceptance_days),
            registered_by=registered_by,
            request_hash=digest,
            referral_id=referral_id,
            referral_due=referral_due,
            referral_kind=referral_kind,
            history=[
                HistoryEntry(
                    at=now,
                    action="register",
                    by=registered_by,
                    status=CaseStatus.RECEIVED,
                    note=route.reason_zh,
                )
            ],
        )
        registered = new_event(
            CaseRegistered(
                case_id=case.id,
                channel=case.channel,
                county=case.county,
                township=case.township,
                category=case.category,
                category_confidence=case.category_confidence,
                risk_level=case.risk_level,
                risk_signals=case.risk_signals,
                organisation_id=case.organisation_id,
                party_keys=sorted({p.id_number_key for p in parties if p.id_number_key}),
                parties_count=len(parties),
                amount=case.amount,
                received_at=now,
                acceptance_due=case.acceptance_due,
                referral_id=referral_id,
            ),
            source=SOURCE,
            subject=case.id,
            county=case.county,
            id=case_id_for(scope="CaseRegistered", key=case.id),
            time=now,
        )
        events = [(topics.CASES, registered)]
        if rating.level == RiskLevel.GRAVE:
            events.append(
                (
                    topics.CASES,
                    self._event(
                        RiskRaised,
                        case,
                        at=now,
                        by=SYSTEM,
                        action_id="register",
                        fields={
                            "risk_level": rating.level,
                            "signals": rating.codes,
                            "party_keys": sorted({p.id_number_key for p in parties if p.id_number_key}),
                        },
                    ),
                )
            )
        if not await self._commit(case, events, at=now):
            raced = await self._await_case(case_id)
            return await self._replayed(raced, digest)
        self.metrics.received.labels(case.county, case.channel, case.category).inc()
        await self._index(case, fingerprints, seen=seen)
        return Registration(case=case, created=True)

    async def _await_case(self, case_id: str) -> CaseDoc:
        """The case another writer is registering right now (its revision 1 is committed)."""
        for attempt in range(50):
            await self.repo.catch_up(case_id, 1)
            found = await self.repo.get_case(case_id)
            if found is not None:
                return found
            await asyncio.sleep(0.02 * (attempt + 1))
        raise Conflict("案件登记冲突，请重试", "registration collided; retry")

    async def _replayed(self, case: CaseDoc, digest: str) -> Registration:
        if case.request_hash and case.request_hash != digest:
            raise Invalid(
                [
                    FieldError(
                        "Idempotency-Key",
                        "idempotency_key_reused",
                        "该幂等键已用于另一份不同的申请",
                        "this Idempotency-Key was used for a different submission",
                    )
                ]
            )
        # A crash may have stopped registration after the commit: finish what follows it.
        await self._index(case, self._fingerprints(case.parties, case.category))
        return Registration(case=case, created=False)

    async def _commit(self, new: CaseDoc, events: list[tuple[str, CloudEvent]], *, at: datetime) -> bool:
        """Commit a new state of a case (revision `new.version`) and publish its events;
        False when another writer committed that version first."""
        revision = await self.repo.commit(
            case_id=new.id, version=new.version, doc=new.to_mongo(), events=events, at=at
        )
        if revision is None:
            await self.repo.catch_up(new.id, new.version)
            return False
        # Published and applied: settle the revision in the update that empties its outbox.
        await self.relay.flush(
            self.repo.revisions,
            revision["_id"],
            revision[OUTBOX],
            rev=1,
            also_set=self.repo.SETTLED_SET,
            also_unset=self.repo.SETTLED_UNSET,
        )
        return True

    @staticmethod
    def _next(case: CaseDoc, change: Change, *, entries: list[HistoryEntry], action_id: str) -> CaseDoc:
        """The case after a change (a whole new snapshot, one version on)."""
        data = case.model_dump(by_alias=True)
        data.update(change.sets)
        for name, item in change.push.items():
            data[name] = [*data.get(name, []), item]
        data["status"] = change.status
        data["history"] = [*data["history"], *(e.model_dump() for e in entries)]
        data["applied"] = [*data["applied"], action_id]
        data["version"] = case.version + 1
        return CaseDoc.model_validate(data)

    def _protect(self, role: str, party: PartyIn) -> StoredParty:
        name = normalise_name(party.name)
        id_number = normalise_id_number(party.id_number) if party.id_number else None
        phone = normalise_mobile(party.phone) if party.phone else None
        return StoredParty(
            role=role,
            kind=party.kind,
            name_enc=self.protector.encrypt(name),
            name_key=self.protector.keyed_hash(name, purpose="name"),
            id_number_enc=self.protector.encrypt(id_number) if id_number else None,
            id_number_key=self.protector.keyed_hash(id_number) if id_number else None,
            phone_enc=self.protector.encrypt(phone) if phone else None,
            phone_key=self.protector.keyed_hash(phone, purpose="phone") if phone else None,
            address_enc=self.protector.encrypt(party.address) if party.address else None,
            vulnerable=party.vulnerable,
        )

    @staticmethod
    def _decide_category(
        submitted: Category | None, suggestion: Classification, authority: str
    ) -> tuple[Category, str, float]:
        """Staff (a desk) and referring bodies decide; a citizen's or a system's own choice
        counts only where the classifier is unsure."""
        if submitted is not None and authority in ("desk", "referral"):
            return submitted, authority, 1.0
        if submitted is not None and not suggestion.confident:
            return submitted, "applicant", max(suggestion.confidence, 0.5)
        return suggestion.category, "classifier", suggestion.confidence

    # -- duplicates and visits ------------------------------------------------------------
    def _fingerprints(self, parties: list[StoredParty], category: Category) -> list[str]:
        applicants = sorted({p.identity_key for p in parties if p.role == "applicant" and p.identity_key})
        respondents = sorted(
            {p.identity_key for p in parties if p.role == "respondent" and p.identity_key}
        ) or ["-"]
        pairs = [(a, r) for a in applicants for r in respondents][:20]
        return [self.protector.keyed_hash(f"{a}|{r}|{category}", purpose="duplicate") for a, r in pairs]

    async def _open_duplicate(
        self, fingerprints: list[str], now: datetime, *, seen: dict[str, Document | None]
    ) -> CaseDoc | None:
        """An open case of the same parties and category within the window; the
        fingerprints read on the way are left in `seen` for _index."""
        window = timedelta(days=self.settings.duplicate_window_days)
        for key in fingerprints:
            found = seen[key] = await self.repo.fingerprint(key)
            if not found:
                continue
            case = await self.repo.get_case(found["case_id"])
            if case is not None and case.status in OPEN and now - case.received_at <= window:
                return case
        return None

    async def _index(
        self, case: CaseDoc, fingerprints: list[str], *, seen: dict[str, Document | None] | None = None
    ) -> None:
        """Remember a new case for duplicate matching and repeat-visit counting."""
        seen = seen or {}
        for key in fingerprints:
            current = seen[key] if key in seen else await self.repo.fingerprint(key)
            if current is None or current["case_id"] != case.id:
                newer = current is not None and current["at"] > case.received_at
                if not newer:
                    await self.repo.put_fingerprint(key, case_id=case.id, at=case.received_at)
        for party in case.parties:
            if party.role == "applicant" and party.identity_key:
                await self.repo.add_visit(party.identity_key, case_id=case.id, at=case.received_at)

    async def _prior_visits(self, keys: list[str], *, now: datetime, excluding: str) -> int:
        since = now - timedelta(days=self.settings.repeat_visit_window_days)
        most = 0
        for key in keys:
            visits = await self.repo.visits_of(key)
            most = max(most, sum(1 for cid, at in visits.items() if cid != excluding and at >= since))
        return most

    async def _link_duplicate(
        self,
        case: CaseDoc,
        *,
        submission_id: str,
        channel: Channel,
        by: str,
        parties: list[StoredParty],
        referral_id: str | None,
    ) -> Registration:
        """Link a submission to the open case it repeats, once, and say so."""
        now = self.clock.now()

        def build(current: CaseDoc, at: datetime) -> Change:
            if current.status not in OPEN:
                raise Conflict("案件已结束，请重新提交", "the case closed meanwhile; submit again")
            link = DuplicateLink(submission_id=submission_id, channel=channel, at=at, by=by)
            sets: dict[str, Any] = {}
            if referral_id and not current.referral_id:
                sets["referral_id"] = referral_id
            return Change(
                status=current.status,
                note=f"重复申请已并入本案（{channel}）",
                sets=sets,
                push={"duplicate_links": link.model_dump(mode="python")},
                events=[(DuplicateLinked, {"channel": channel})],
            )

        applied = await self._apply(
            case.id, action="link_duplicate", action_id=f"link:{submission_id}", by=by, build=build
        )
        await self.repo.put_link(submission_id, case_id=case.id, at=now)
        for party in parties:
            if party.role == "applicant" and party.identity_key:
                await self.repo.add_visit(party.identity_key, case_id=submission_id, at=now)
        if applied.fresh:
            self.metrics.duplicates_linked.inc()
        return Registration(case=applied.case, created=False, linked=True)

    # -- the generic transition ------------------------------------------------------------
    def _event(
        self,
        cls: type[CaseEvent],
        case: CaseDoc,
        *,
        at: datetime,
        by: str,
        action_id: str,
        fields: dict[str, Any],
    ) -> CloudEvent:
        payload = cls(
            case_id=case.id,
            county=case.county,
            township=case.township,
            category=case.category,
            organisation_id=case.organisation_id,
            status=fields.pop("status", case.status),
            at=at,
            by=by,
            referral_id=case.referral_id,
            **fields,
        )
        return new_event(
            payload,
            source=SOURCE,
            subject=case.id,
            county=case.county,
            id=derived_id(f"{case.id}:{action_id}", cls.event_type),
            time=at,
        )

    async def _apply(
        self,
        case_id: str,
        *,
        action: str,
        action_id: str,
        by: str,
        build: Callable[[CaseDoc, datetime], Change | None],
        scope: Scope | None = None,
    ) -> Applied:
        """Read, decide, commit, publish; decided again when another writer came first."""
        for attempt in range(_MAX_ATTEMPTS):
            raw = await self.repo.get_case_raw(case_id)
            if raw is None or (scope is not None and not scope.admits(raw)):
                raise NotFound("案件", "case")
            case = CaseDoc.model_validate(raw)
            if action_id in case.applied:
                return Applied(case, fresh=False)
            now = self.clock.now()
            change = build(case, now)
            if change is None:
                return Applied(case, fresh=False)
            entry = HistoryEntry(at=now, action=action, by=by, status=change.status, note=change.note)
            after = self._next(case, change, entries=[entry], action_id=action_id)
            events = [
                (
                    topics.CASES,
                    self._event(cls, after, at=now, by=by, action_id=action_id, fields=dict(fields)),
                )
                for cls, fields in change.events
            ]
            for topic, make, name in change.others:
                event_id = derived_id(f"{case.id}:{action_id}", name)
                events.append(
                    (
                        topic,
                        new_event(
                            make(after),
                            source=SOURCE,
                            subject=case.id,
                            county=case.county,
                            id=event_id,
                            time=now,
                        ),
                    )
                )
            if await self._commit(after, events, at=now):
                self.metrics.transitions.labels(action, case.county).inc()
                return Applied(after, fresh=True)
            await asyncio.sleep(0.005 * (attempt + 1))
        raise Conflict("案件正被同时修改，请稍后重试", "the case is being changed concurrently; retry")

    # -- acceptance ---------------------------------------------------------------------------
    async def accept(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None = None,
        organisation_id: str | None = None,
    ) -> CaseDoc:
        """受理: record the intent, claim the next case number, then accept (see complete_acceptance)."""
        for _ in range(_MAX_ATTEMPTS):
            raw = await self.repo.get_case_raw(case_id)
            if raw is None or (scope is not None and not scope.admits(raw)):
                raise NotFound("案件", "case")
            case = CaseDoc.model_validate(raw)
            if action_id in case.applied:
                return case
            if case.accept_pending:
                return await self.complete_acceptance(case_id)
            lifecycle.check("accept", case.status)
            org_id = case.organisation_id or organisation_id
            if organisation_id and case.organisation_id and organisation_id != case.organisation_id:
                raise Invalid(
                    [
                        FieldError(
                            "organisation_id",
                            "already_routed",
                            "案件已分流至其他调解组织",
                            "the case is routed to another organisation",
                        )
                    ]
                )
            organisation = await self.repo.get_organisation(org_id) if org_id else None
            foreign = organisation is not None and organisation.county != case.county
            if organisation is None or foreign:
                raise Invalid(
                    [
                        FieldError(
                            "organisation_id",
                            "organisation_required",
                            "请指定本县区的受理调解组织",
                            "name an organisation of the case's county to accept it",
                        )
                    ]
                )
            now = self.clock.now()
            year = now.astimezone(self.tz).year
            intent = {
                "at": now,
                "by": by,
                "action_id": action_id,
                "organisation_id": organisation.id,
                "short_name": organisation.short_name,
                "year": year,
                "counter": f"{organisation.id}:{year}",
            }
            change = Change(
                status=case.status,
                note="受理中",
                sets={
                    "accept_pending": True,
                    "acceptance_intent": intent,
                    "organisation_id": organisation.id,
                },
            )
            # The intent is an internal step (no history entry) with an id of its own, so
            # that the final step records the request's id.
            intended = self._next(case, change, entries=[], action_id=f"intent:{action_id}")
            if await self._commit(intended, [], at=now):
                return await self.complete_acceptance(case_id)
            await asyncio.sleep(0.005)
        raise Conflict("案件正被同时修改，请稍后重试", "the case is being changed concurrently; retry")

    async def complete_acceptance(self, case_id: str) -> CaseDoc:
        """Finish an acceptance whose intent is recorded: claim the number (the same one on
        every retry) and write the accepted state with its events. Run by the request,
        and by the reconciler for intents a crash left behind: no number is ever lost."""
        for _ in range(_MAX_ATTEMPTS):
            raw = await self.repo.get_case_raw(case_id)
            if raw is None:
                raise NotFound("案件", "case")
            case = CaseDoc.model_validate(raw)
            intent = case.acceptance_intent
            if not case.accept_pending or intent is None:
                return case
            n = await self.repo.claim_number(counter=intent["counter"], case_id=case_id, at=intent["at"])
            number = format_case_number(year=intent["year"], short_name=intent["short_name"], n=n)
            accepted_at: datetime = intent["at"]
            if case.referral_due is not None:
                clock = MediationClock(started_at=accepted_at, due=case.referral_due, source="referral")
            else:
                clock = MediationClock(
                    started_at=accepted_at, due=accepted_at + timedelta(days=self.settings.mediation_days)
                )
            pre = (
                case.assignment
                if case.assignment and case.assignment.organisation_id == case.organisation_id
                else None
            )
            status = CaseStatus.ASSIGNED if pre else CaseStatus.ACCEPTED
            accepted = case.model_copy(update={"status": CaseStatus.ACCEPTED, "case_number": number})
            action_id = intent["action_id"]
            events = [
                (
                    topics.CASES,
                    self._event(
                        CaseAccepted,
                        accepted,
                        at=accepted_at,
                        by=intent["by"],
                        action_id=action_id,
                        fields={"case_number": number, "mediation_due": clock.due},
                    ),
                )
            ]
            history = [
                HistoryEntry(
                    at=accepted_at, action="accept", by=intent["by"], status=CaseStatus.ACCEPTED, note=number
                )
            ]
            if pre is not None:
                assigned = accepted.model_copy(update={"status": status})
                events.append(
                    (
                        topics.CASES,
                        self._event(
                            CaseAssignmentRecorded,
                            assigned,
                            at=accepted_at,
                            by=SYSTEM,
                            action_id=action_id,
                            fields={"mediator_id": pre.mediator_id},
                        ),
                    )
                )
                history.append(
                    HistoryEntry(
                        at=accepted_at,
                        action="assign",
                        by=SYSTEM,
                        status=status,
                        note=f"受理前已指派调解员 {pre.mediator_id}",
                    )
                )
            change = Change(
                status=status,
                sets={
                    "case_number": number,
                    "accepted_at": accepted_at,
                    "accepted_by": intent["by"],
                    "clock": clock.model_dump(),
                    "accept_pending": False,
                    "acceptance_intent": None,
                },
            )
            after = self._next(case, change, entries=history, action_id=action_id)
            if not await self._commit(after, events, at=accepted_at):
                await asyncio.sleep(0.005)
                continue
            self.metrics.transitions.labels("accept", case.county).inc()
            self.metrics.stage_seconds.labels("accept", case.county).observe(
                max(0.0, (accepted_at - case.received_at).total_seconds())
            )
            return after
        raise Conflict("案件正被同时修改，请稍后重试", "the case is being changed concurrently; retry")

    async def reconcile(self, *, grace: timedelta = timedelta(seconds=5)) -> int:
        """Repair what a crash left half done (runs periodically on every replica):
        revisions committed but not applied to their case, and acceptances between intent
        and result. Both repairs are idempotent."""
        repaired = 0
        cutoff = self.clock.now() - grace
        for revision in await self.repo.unapplied_revisions():
            if revision["at"] > cutoff:
                continue  # its writer is probably still at work
            await self.repo.catch_up(revision["case_id"], revision["version"])
            if await self.repo.published(revision["_id"]):
                await self.repo.settle(revision["_id"])
            repaired += 1
        for case_id in await self.repo.pending_acceptances():
            await self.complete_acceptance(case_id)
            repaired += 1
        return repaired

    async def reconcile_forever(self, interval: float) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("acceptance reconciliation failed", error=type(exc).__name__)
            await asyncio.sleep(interval)

    async def reject(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        reason_code: str,
        reason_text: str = "",
        scope: Scope | None = None,
    ) -> CaseDoc:
        """不予受理, with a reason from the fixed list."""
        if reason_code not in REJECTION_REASONS:
            raise Invalid(
                [
                    FieldError(
                        "reason_code",
                        "unknown_reason",
                        "不予受理理由不在规定列表中",
                        "the reason is not in the fixed list",
                    )
                ]
            )

        def build(case: CaseDoc, now: datetime) -> Change:
            self._not_accepting(case)
            status = lifecycle.check("reject", case.status)
            text = scrub(reason_text.strip()) or REJECTION_REASONS[reason_code]
            rejection = Rejection(reason_code=reason_code, reason_text=text, at=now, by=by)
            return Change(
                status=status,
                note=REJECTION_REASONS[reason_code],
                sets={"rejection": rejection.model_dump(mode="python")},
                events=[(CaseRejected, {"reason_code": reason_code, "reason_text": text})],
            )

        return (
            await self._apply(case_id, action="reject", action_id=action_id, by=by, build=build, scope=scope)
        ).case

    @staticmethod
    def _not_accepting(case: CaseDoc) -> None:
        if case.accept_pending:
            raise Conflict("案件正在受理中，请稍后再试", "the case is being accepted; try again shortly")

    # -- the mediator's actions ------------------------------------------------------------------
    async def record_session(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        held_at: datetime,
        place: str,
        participants: list[str],
        record: str,
    ) -> CaseDoc:
        """A mediation session; the first one moves the case into mediation."""

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("record_session", case.status)
            if held_at > now + timedelta(hours=1):
                raise Invalid(
                    [
                        FieldError(
                            "held_at",
                            "in_the_future",
                            "调解时间不能晚于当前时间",
                            "a session cannot be recorded before it is held",
                        )
                    ]
                )
            if case.accepted_at and held_at < case.accepted_at - timedelta(days=1):
                raise Invalid(
                    [
                        FieldError(
                            "held_at",
                            "before_acceptance",
                            "调解时间不能早于受理时间",
                            "a session cannot precede acceptance",
                        )
                    ]
                )
            number = len(case.sessions) + 1
            session = Session(
                number=number,
                held_at=held_at,
                place=place,
                participants=participants,
                record=record,
                by=by,
                action_id=action_id,
            )
            return Change(
                status=status,
                note=f"第{number}次调解",
                push={"sessions": session.model_dump(mode="python")},
                events=[(SessionRecorded, {"session_number": number, "held_at": held_at})],
            )

        return (
            await self._apply(
                case_id, action="record_session", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def resolve(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        form: str,
        amount: float | None,
        performance_due: date | None,
        summary: str,
        text: str,
        judicial_confirmation: bool,
    ) -> CaseDoc:
        """调解成功: an oral or written agreement."""
        errors = []
        if form not in AGREEMENT_FORMS:
            errors.append(
                FieldError("form", "unknown_form", "协议形式应为口头或书面", "form must be oral or written")
            )
        if form == "written" and not text.strip():
            errors.append(
                FieldError(
                    "text",
                    "required_for_written",
                    "书面协议须填写协议内容",
                    "a written agreement needs its text",
                )
            )
        if judicial_confirmation and form != "written":
            errors.append(
                FieldError(
                    "judicial_confirmation",
                    "needs_written",
                    "申请司法确认须有书面协议",
                    "judicial confirmation needs a written agreement",
                )
            )
        if performance_due is not None and performance_due < self.today():
            errors.append(
                FieldError(
                    "performance_due",
                    "in_the_past",
                    "履行期限不能早于今天",
                    "the performance deadline cannot be in the past",
                )
            )
        if errors:
            raise Invalid(errors)
        clean_summary = scrub(summary.strip())

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("resolve", case.status)
            confirmation_due = (
                self.today() + timedelta(days=self.settings.judicial_confirmation_days)
                if judicial_confirmation
                else None
            )
            agreement = Agreement(
                form=form,
                amount=amount,
                performance_due=performance_due,
                summary=clean_summary,
                text=text,
                judicial_confirmation=judicial_confirmation,
                judicial_confirmation_due=confirmation_due,
                at=now,
                by=by,
            )
            return Change(
                status=status,
                note=AGREEMENT_FORMS[form],
                sets={"agreement": agreement.model_dump(mode="python")},
                events=[
                    (
                        CaseResolved,
                        {
                            "agreement_form": form,
                            "amount": amount,
                            "performance_due": performance_due,
                            "agreement_summary": clean_summary,
                            "judicial_confirmation_due": confirmation_due,
                        },
                    )
                ],
            )

        return (
            await self._apply(case_id, action="resolve", action_id=action_id, by=by, build=build, scope=scope)
        ).case

    async def fail(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, route: str, reason: str
    ) -> CaseDoc:
        """调解不成, with the route the parties are guided to."""
        if route not in FAILURE_ROUTES:
            raise Invalid(
                [
                    FieldError(
                        "route",
                        "unknown_route",
                        "引导途径应为诉讼、仲裁、行政或其他",
                        "route must be litigation, arbitration, administrative or other",
                    )
                ]
            )
        clean = scrub(reason.strip())

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("fail", case.status)
            failure = Failure(route=route, reason=clean, at=now, by=by)
            return Change(
                status=status,
                note=FAILURE_ROUTES[route],
                sets={"failure": failure.model_dump(mode="python")},
                events=[(CaseFailed, {"route": route, "reason": clean})],
            )

        return (
            await self._apply(case_id, action="fail", action_id=action_id, by=by, build=build, scope=scope)
        ).case

    async def record_performance(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, performed_on: date, note: str
    ) -> CaseDoc:
        """Proof that the agreement was performed."""
        if performed_on > self.today():
            raise Invalid(
                [
                    FieldError(
                        "performed_on",
                        "in_the_future",
                        "履行日期不能晚于今天",
                        "performance cannot be recorded ahead",
                    )
                ]
            )

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("record_performance", case.status)
            if case.agreement is None:
                raise lifecycle.illegal("record_performance", case.status)
            if case.performance is not None:
                raise Conflict("协议履行情况已记录", "performance is already recorded")
            performance = Performance(performed_on=performed_on, note=note, at=now, by=by)
            return Change(
                status=status,
                note="协议已履行",
                sets={"performance": performance.model_dump(mode="python")},
                events=[(AgreementPerformed, {})],
            )

        return (
            await self._apply(
                case_id, action="record_performance", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def follow_up(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        visited_on: date,
        method: str,
        satisfied: bool | None,
        record: str,
    ) -> CaseDoc:
        """回访."""
        if method not in FOLLOW_UP_METHODS:
            raise Invalid(
                [
                    FieldError(
                        "method",
                        "unknown_method",
                        "回访方式应为电话、上门、网上或其他",
                        "method must be phone, visit, online or other",
                    )
                ]
            )
        if visited_on > self.today():
            raise Invalid(
                [
                    FieldError(
                        "visited_on",
                        "in_the_future",
                        "回访日期不能晚于今天",
                        "a visit cannot be recorded ahead",
                    )
                ]
            )

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("follow_up", case.status)
            visit = FollowUp(
                visited_on=visited_on, method=method, satisfied=satisfied, record=record, at=now, by=by
            )
            return Change(
                status=status,
                note=FOLLOW_UP_METHODS[method],
                sets={"follow_up": visit.model_dump(mode="python")},
                events=[(FollowUpRecorded, {"satisfied": satisfied})],
            )

        return (
            await self._apply(
                case_id, action="follow_up", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def archive(self, *, case_id: str, by: str, action_id: str, scope: Scope | None) -> CaseDoc:
        """归档: only a complete file is closed."""

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("archive", case.status)
            missing = casefile.missing_for_archive(case)
            if missing:
                labels = {p.code: p.label for p in casefile.PARTS}
                raise Conflict(
                    "卷宗不完整，缺少：" + "、".join(labels[m] for m in missing),
                    "the case file is incomplete: " + ", ".join(missing),
                    missing_parts=missing,
                )
            return Change(
                status=status, note="卷宗完整，归档", sets={"archived_at": now}, events=[(CaseArchived, {})]
            )

        return (
            await self._apply(case_id, action="archive", action_id=action_id, by=by, build=build, scope=scope)
        ).case

    async def withdraw(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, reason: str
    ) -> CaseDoc:
        """The applicant withdrew, at any open stage."""

        def build(case: CaseDoc, now: datetime) -> Change:
            self._not_accepting(case)
            status = lifecycle.check("withdraw", case.status)
            return Change(
                status=status,
                note="申请人撤回",
                sets={"withdrawn_at": now, "withdrawal_reason": scrub(reason.strip())},
                events=[(CaseWithdrawn, {"previous_status": case.status})],
            )

        return (
            await self._apply(
                case_id, action="withdraw", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def add_document(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        part: str,
        title: str,
        uri: str,
        media_type: str | None,
        sha256: str | None,
        pages: int | None,
    ) -> CaseDoc:
        """Metadata of a document of the file (the content stays where `uri` points)."""
        if part not in casefile.PART_CODES:
            raise Invalid(
                [FieldError("part", "unknown_part", "卷宗部分不存在", "no such part of the case file")]
            )

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("add_document", case.status)
            ref = DocumentRef(
                id=action_id,
                part=part,
                title=title,
                uri=uri,
                media_type=media_type,
                sha256=sha256,
                pages=pages,
                added_at=now,
                by=by,
            )
            return Change(
                status=status, note=f"添加{part}", push={"documents": ref.model_dump(mode="python")}
            )

        return (
            await self._apply(
                case_id, action="add_document", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def set_category(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, category: Category
    ) -> CaseDoc:
        """A desk user overrides the category; later events carry the new one."""

        def build(case: CaseDoc, now: datetime) -> Change | None:
            status = lifecycle.check("set_category", case.status)
            if case.category == category and case.category_source == "desk":
                return None
            return Change(
                status=status,
                note=f"类别改为{category}",
                sets={"category": category, "category_source": "desk", "category_confidence": 1.0},
            )

        return (
            await self._apply(
                case_id, action="set_category", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def nominate(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, note: str
    ) -> CaseDoc:
        """Offer a closed case to the typical-case library (CaseNominated on
        intake.nominations.v1): its texts travel encrypted, for the library to anonymise."""

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("nominate", case.status)
            if case.nominated_at is not None:
                raise Conflict("该案件已推荐入库", "the case is already nominated")
            if case.status == CaseStatus.WITHDRAWN:
                outcome = CaseStatus.WITHDRAWN
            else:
                outcome = CaseStatus.RESOLVED if case.agreement is not None else CaseStatus.FAILED

            def nomination(after: CaseDoc) -> EventData:
                return CaseNominated(
                    case_id=after.id,
                    county=after.county,
                    township=after.township,
                    category=after.category,
                    organisation_id=after.organisation_id,
                    case_number=after.case_number,
                    outcome=outcome,
                    amount=after.agreement.amount if after.agreement else after.amount,
                    referral_kind=after.referral_kind,
                    received_at=after.received_at,
                    closed_at=after.archived_at or after.withdrawn_at,
                    nominated_by=by,
                    nominated_at=now,
                    note=note,
                    content_enc=self.protector.encrypt(self._nominated_content(after).model_dump_json()),
                )

            return Change(
                status=status,
                note="推荐入选典型案例库",
                sets={"nominated_at": now, "nominated_by": by},
                others=[(topics.LIBRARY_NOMINATIONS, nomination, CaseNominated.event_type)],
            )

        return (
            await self._apply(
                case_id, action="nominate", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    def _nominated_content(self, case: CaseDoc) -> NominatedContent:
        return NominatedContent(
            description=case.description,
            parties=[{"role": p.role, "name": self.protector.decrypt(p.name_enc)} for p in case.parties],
            sessions=[
                NominatedSession(
                    held_at=s.held_at, place=s.place, participants="、".join(s.participants), record=s.record
                )
                for s in case.sessions
            ],
            agreement_text=case.agreement.text if case.agreement else "",
            failure_reason=case.failure.reason if case.failure else "",
            follow_up_record=case.follow_up.record if case.follow_up else "",
        )

    # -- the mediation clock -------------------------------------------------------------------
    async def pause_clock(
        self, *, case_id: str, by: str, action_id: str, scope: Scope | None, reason: str
    ) -> CaseDoc:
        """Stop the mediation clock (e.g. awaiting an appraisal), with the reason logged."""

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("pause_clock", case.status)
            clock = self._clock_of(case)
            if clock.paused_at is not None:
                raise Conflict("调解期限已暂停", "the mediation clock is already paused")
            clock = clock.model_copy(
                update={"paused_at": now, "pauses": [*clock.pauses, Pause(paused_at=now, reason=reason)]}
            )
            return Change(
                status=status,
                note=f"暂停：{reason}",
                sets={"clock": clock.model_dump(mode="python")},
                events=[
                    (
                        DeadlineChanged,
                        {"clock": "mediation", "due": None, "change": "paused", "reason": reason},
                    )
                ],
            )

        return (
            await self._apply(
                case_id, action="pause_clock", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def resume_clock(self, *, case_id: str, by: str, action_id: str, scope: Scope | None) -> CaseDoc:
        """Restart a paused clock; the time it stood still is added to the deadline."""

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("resume_clock", case.status)
            clock = self._clock_of(case)
            if clock.paused_at is None:
                raise Conflict("调解期限未暂停", "the mediation clock is not paused")
            due = clock.due + (now - clock.paused_at)
            pauses = [*clock.pauses[:-1], clock.pauses[-1].model_copy(update={"resumed_at": now})]
            clock = clock.model_copy(update={"paused_at": None, "due": due, "pauses": pauses})
            return Change(
                status=status,
                note="恢复计时",
                sets={"clock": clock.model_dump(mode="python")},
                events=[(DeadlineChanged, {"clock": "mediation", "due": due, "change": "resumed"})],
            )

        return (
            await self._apply(
                case_id, action="resume_clock", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    async def extend_clock(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None,
        days: int,
        applicant_consent: bool,
        respondent_consent: bool,
        consent_record: str,
    ) -> CaseDoc:
        """Extend the mediation clock once, with both parties' recorded consent."""
        errors = []
        if not 1 <= days <= self.settings.max_extension_days:
            errors.append(
                FieldError(
                    "days",
                    "out_of_range",
                    f"延长天数应为1至{self.settings.max_extension_days}天",
                    f"days must be 1 to {self.settings.max_extension_days}",
                )
            )
        if not applicant_consent:
            errors.append(
                FieldError(
                    "applicant_consent",
                    "consent_required",
                    "延长调解期限须经申请人同意",
                    "the applicant must consent",
                )
            )
        if not respondent_consent:
            errors.append(
                FieldError(
                    "respondent_consent",
                    "consent_required",
                    "延长调解期限须经被申请人同意",
                    "the respondent must consent",
                )
            )
        if not consent_record.strip():
            errors.append(
                FieldError(
                    "consent_record", "required", "须记录双方同意的情况", "record how both parties consented"
                )
            )
        if errors:
            raise Invalid(errors)

        def build(case: CaseDoc, now: datetime) -> Change:
            status = lifecycle.check("extend_clock", case.status)
            clock = self._clock_of(case)
            if clock.extension is not None:
                raise Conflict(
                    "调解期限只能延长一次，已延长过",
                    "the mediation clock can be extended once and already was",
                )
            due = clock.due + timedelta(days=days)
            extension = Extension(
                days=days,
                applicant_consent=True,
                respondent_consent=True,
                consent_record=consent_record,
                at=now,
                by=by,
            )
            clock = clock.model_copy(update={"due": due, "extension": extension})
            return Change(
                status=status,
                note=f"经双方同意延长{days}天",
                sets={"clock": clock.model_dump(mode="python")},
                events=[
                    (
                        DeadlineChanged,
                        {
                            "clock": "mediation",
                            "due": due,
                            "change": "extended",
                            "reason": f"双方同意延长{days}天",
                        },
                    )
                ],
            )

        return (
            await self._apply(
                case_id, action="extend_clock", action_id=action_id, by=by, build=build, scope=scope
            )
        ).case

    @staticmethod
    def _clock_of(case: CaseDoc) -> MediationClock:
        if case.clock is None:
            raise Conflict("案件尚未受理，调解期限未开始", "the mediation clock has not started")
        return case.clock

    # -- projections and assignments ------------------------------------------------------------
    async def project_organisation(self, *, event: OrganisationUpdated) -> None:
        """Keep intake's routing table in step with the registry."""
        fields = event.model_dump(mode="json", exclude={"organisation_id", "version"})
        await self.repo.upsert_organisation(
            organisation_id=event.organisation_id, version=event.version, fields=fields
        )

    async def record_assignment(self, *, event: MediatorAssigned, event_id: str) -> None:
        """Record the mediator the registry chose. Before acceptance it is kept as a
        pre-assignment; an accepted or transferred case becomes `assigned`; a case in
        hand gets the new mediator (reassignment). Stale and repeated decisions are ignored."""

        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.status not in OPEN:
                return None
            held = current.assignment
            if held is not None and held.assigned_at >= event.assigned_at:
                return None  # the same decision again, or an older one arriving late
            if (
                current.transfers
                and event.assigned_at < current.transfers[-1].at
                and event.organisation_id != current.organisation_id
            ):
                return None  # decided for the organisation the case has left
            assignment = Assignment(
                mediator_id=event.mediator_id,
                mediator_name=event.mediator_name,
                organisation_id=event.organisation_id,
                assigned_at=event.assigned_at,
                reason=event.reason,
                escalated_from=event.escalated_from,
                manual=event.manual,
            )
            sets = {
                "assignment": assignment.model_dump(mode="python"),
                "mediator_id": event.mediator_id,
                "organisation_id": event.organisation_id,
                "assignment_failure": None,
            }
            if current.status in (CaseStatus.RECEIVED,):
                return Change(
                    status=current.status, note=f"受理前预指派调解员 {event.mediator_id}", sets=sets
                )
            status = (
                CaseStatus.ASSIGNED
                if current.status in (CaseStatus.ACCEPTED, CaseStatus.TRANSFERRED)
                else current.status
            )
            return Change(
                status=status,
                note=f"指派调解员 {event.mediator_id}",
                sets=sets,
                events=[(CaseAssignmentRecorded, {"mediator_id": event.mediator_id})],
            )

        await self._apply_from_registry(
            event.case_id, action="assign", action_id=f"assign:{event_id}", build=build
        )

    async def _apply_from_registry(
        self,
        case_id: str,
        *,
        action: str,
        action_id: str,
        build: Callable[[CaseDoc, datetime], Change | None],
    ) -> None:
        """Apply a registry decision to a case; a case intake does not know is skipped
        (found missing by the read _apply makes anyway, not by a read of its own)."""
        try:
            await self._apply(case_id, action=action, action_id=action_id, by="system:registry", build=build)
        except NotFound:
            log.info("registry decision for an unknown case ignored", case_id=case_id, action=action)

    async def record_assignment_failure(self, *, event: AssignmentFailed, event_id: str) -> None:
        """Nobody eligible: the case shows why, so a centre user can step in."""

        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.status not in OPEN or current.assignment is not None:
                return None
            failure = AssignmentFailure(reason=event.reason, tried=event.tried, at=event.failed_at)
            return Change(
                status=current.status,
                note=f"未能指派调解员：{event.reason}",
                sets={"assignment_failure": failure.model_dump(mode="python")},
            )

        await self._apply_from_registry(
            event.case_id, action="assignment_failed", action_id=f"assign-failed:{event_id}", build=build
        )

    # -- referrals and transfers ----------------------------------------------------------------
    async def accept_referral(self, *, event: ReferralAccepted, event_id: str) -> None:
        """A body accepted a referral: link the named case, or register the dispute (channel
        referral) and accept it for the receiving organisation, idempotently."""
        if event.case_id:
            existing = await self.repo.get_case(event.case_id)
            if existing is not None:
                await self._link_referral(existing, event)
                return
        try:
            plain = self.protector.decrypt(event.submission_enc)
            submission = DisputeSubmission.model_validate_json(plain)
        except Exception as exc:
            raise DeadLetter("undecryptable_submission", detail=type(exc).__name__) from None
        if event.category and submission.category is None:
            submission = submission.model_copy(update={"category": event.category})
        case_id = case_id_for(scope="referral", key=event.referral_id)
        result = await self.register(
            submission=submission,
            registered_by="system:referral",
            case_id=case_id,
            category_authority="referral",
            channel=Channel.REFERRAL,
            organisation_id=event.organisation_id,
            referral_id=event.referral_id,
            referral_due=event.due,
            referral_kind=event.referral_kind,
        )
        if result.linked:
            return
        if await self.repo.get_organisation(event.organisation_id) is None:
            log.warning(
                "referred case left for the desk: organisation not yet known",
                organisation_id=event.organisation_id,
            )
            return
        if result.case.status == CaseStatus.RECEIVED or result.case.accept_pending:
            # The receiving organisation accepted the referral: that is its acceptance (受理).
            await self.accept(
                case_id=case_id, by="system:referral", action_id=f"referral-accept:{event.referral_id}"
            )

    async def _link_referral(self, case: CaseDoc, event: ReferralAccepted) -> None:
        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.referral_id == event.referral_id:
                return None
            return Change(
                status=current.status,
                note=f"关联移交 {event.referral_id}",
                sets={"referral_id": event.referral_id},
            )

        await self._apply(
            case.id,
            action="link_referral",
            action_id=f"referral:{event.referral_id}",
            by="system:referral",
            build=build,
        )

    async def transfer(self, *, event: TransferAccepted, event_id: str) -> None:
        """An accepted transfer (转办/交办/上报) moves the case to another organisation.

        Status rule: a `received` case stays `received` (the new organisation decides on
        acceptance); a case already accepted becomes `transferred` until the new
        organisation's mediator is recorded (→ `assigned`), or `assigned` at once when that
        mediator was recorded before the transfer arrived. Case number and clocks stay.
        """
        held = await self.repo.get_case(event.case_id)
        if held is None:
            raise DeadLetter("unknown_case", detail="transfer for a case intake does not hold")
        if held.accept_pending:
            await self.complete_acceptance(event.case_id)

        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.status not in OPEN:
                return None
            self._not_accepting(current)
            held = current.assignment
            keep = (
                held is not None
                and held.organisation_id == event.to_organisation_id
                and held.assigned_at >= event.accepted_at
            )
            if current.status == CaseStatus.RECEIVED:
                status = CaseStatus.RECEIVED
            else:
                status = CaseStatus.ASSIGNED if keep else CaseStatus.TRANSFERRED
            transfer = Transfer(
                transfer_id=event.transfer_id,
                kind=event.kind,
                from_organisation_id=event.from_organisation_id or current.organisation_id,
                to_organisation_id=event.to_organisation_id,
                at=event.accepted_at,
                previous_status=current.status,
            )
            sets: dict[str, Any] = {"organisation_id": event.to_organisation_id}
            if not keep:
                sets |= {"assignment": None, "mediator_id": None}
            return Change(
                status=status,
                note=f"转至 {event.to_organisation_id}",
                sets=sets,
                push={"transfers": transfer.model_dump(mode="python")},
                events=[
                    (
                        CaseTransferred,
                        {
                            "from_organisation_id": transfer.from_organisation_id,
                            "transfer_id": event.transfer_id,
                            "kind": event.kind,
                        },
                    )
                ],
            )

        await self._apply(
            event.case_id,
            action="transfer",
            action_id=f"transfer:{event.transfer_id}",
            by="system:referral",
            build=build,
        )


@dataclass(frozen=True)
class Applied:
    case: CaseDoc
    fresh: bool  # False when the action had been applied before (a retry or redelivery)


__all__ = ["CASE_STATUS_LABELS", "IntakeService", "Registration", "case_id_for"]
