"""Registration: validate, protect, deduplicate, classify, rate risk, route and store a
new case, or link a repeated submission to the open case it repeats."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel, RiskLevel
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.intake import (
    CaseRegistered,
    DisputeSubmission,
    DuplicateLinked,
    PartyIn,
    RiskRaised,
)
from tiaojie.intake.classifier import Classification
from tiaojie.intake.lifecycle import OPEN
from tiaojie.intake.models import (
    CaseDoc,
    DuplicateLink,
    HistoryEntry,
    RiskSignalDoc,
    StoredParty,
    SubmissionReceipt,
)
from tiaojie.intake.risk import RiskInput, rate
from tiaojie.intake.transitions import SOURCE, SYSTEM, Change, Events, IntakeCore, case_event
from tiaojie.intake.validation import normalise_name, validate_submission
from tiaojie.runtime import directory
from tiaojie.runtime.consumer import DeadLetter
from tiaojie.runtime.directory import Organisation
from tiaojie.runtime.errors import Conflict, DomainError, FieldError, Invalid
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.pii import id_birth_date, normalise_id_number, normalise_mobile

_CASE_NS = uuid.UUID("0b6f7f4e-4a0e-4b7e-9d53-6c1f0f1e2a10")
_TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TRACKING_LENGTH = 10  # 32^10 ≈ 10^15 codes: guessing one is hopeless at any request rate


@dataclass(frozen=True)
class Submitted:
    """A system's submission taken from Kafka, with the case id its event determines."""

    submission: DisputeSubmission
    registered_by: str
    case_id: str


@dataclass(frozen=True)
class Prepared:
    """A new case ready to be written, with what registration does after the write."""

    case: CaseDoc
    events: Events
    fingerprints: list[str]
    seen: dict[str, Document | None]
    digest: str


@dataclass(frozen=True)
class Registration:
    case: CaseDoc
    created: bool
    linked: bool = False  # linked to an open case as a duplicate
    # An anonymous submission linked to `case`: what its submitter is told about (only
    # this), never `case` itself.
    receipt: SubmissionReceipt | None = None


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


class Registering(IntakeCore):
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
        anonymous: bool = False,
    ) -> Registration:
        """Register a dispute: validate, protect, link a duplicate or store a new case with
        its CaseRegistered (and RiskRaised when grave) event."""
        prepared = await self._prepare(
            submission=submission,
            registered_by=registered_by,
            case_id=case_id,
            http=http,
            category_authority=category_authority,
            channel=channel,
            organisation_id=organisation_id,
            referral_id=referral_id,
            referral_due=referral_due,
            referral_kind=referral_kind,
            anonymous=anonymous,
        )
        if isinstance(prepared, Registration):
            return prepared
        return await self._finish(prepared, created=await self.writer.create(prepared.case, prepared.events))

    async def register_many(self, *, submissions: Sequence[Submitted]) -> dict[int, BaseException]:
        """Register a batch of system submissions: prepared concurrently (one read of a
        county's organisations per batch), new cases stored with one claim command and
        their events published together. Returns the submissions refused, by index.
        A submission repeating the parties of an earlier one in the same batch is
        registered after it, one at a time, so that it links to it as a duplicate."""
        refused: dict[int, BaseException] = {}
        organisations: dict[str, Awaitable[list[Organisation]]] = {}

        async def prepare(n: int, item: Submitted) -> Prepared | Registration | None:
            try:
                return await self._prepare(
                    submission=item.submission,
                    registered_by=item.registered_by,
                    case_id=item.case_id,
                    organisations=organisations,
                )
            except (DomainError, DeadLetter) as exc:
                refused[n] = exc
                return None

        results = await asyncio.gather(*(prepare(n, item) for n, item in enumerate(submissions)))
        batch: list[tuple[int, Prepared]] = []
        later: list[int] = []
        taken: set[str] = set()
        for n, result in enumerate(results):
            if not isinstance(result, Prepared):
                continue
            if taken & set(result.fingerprints) or result.case.id in {p.case.id for _, p in batch}:
                later.append(n)
                continue
            taken.update(result.fingerprints)
            batch.append((n, result))
        created = await self.writer.create_many([(p.case, p.events) for _, p in batch])

        async def finish(n: int, prepared: Prepared, won: bool) -> None:
            try:
                await self._finish(prepared, created=won)
            except DomainError as exc:
                refused[n] = exc

        await asyncio.gather(*(finish(n, p, won) for (n, p), won in zip(batch, created, strict=True)))
        for n in later:
            item = submissions[n]
            try:
                await self.register(
                    submission=item.submission, registered_by=item.registered_by, case_id=item.case_id
                )
            except (DomainError, DeadLetter) as exc:
                refused[n] = exc
        return refused

    async def _prepare(
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
        organisations: dict[str, Awaitable[list[Organisation]]] | None = None,
        anonymous: bool = False,
    ) -> Prepared | Registration:
        """Everything up to the write: a new case with its events, or the registration a
        replay or a duplicate comes to. An anonymous repeat is routed and rated like a new
        case, so that its receipt looks like one, and then linked."""
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
        if anonymous:
            receipt = await self.repo.receipt_of(case_id)
            if receipt is not None:
                return await self._replayed_receipt(receipt, digest)
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
        if duplicate is not None and not anonymous:
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
            route = directory.Route(chosen, "referral", "移交方指定的受理组织")
            route_id: str | None = organisation_id
        else:
            # A township (validated to lie in the county) has its organisations among the
            # county's; a batch reads each county once.
            in_county = await self._organisations_in(submission.county, organisations)
            route = directory.route(
                county=submission.county,
                township=submission.township,
                category=category,
                risk_level=rating.level,
                cross_county=cross_county,
                in_county=in_county,
            )
            route_id = route.organisation.id if route.organisation else None
        if duplicate is not None:
            receipt = SubmissionReceipt(
                id=case_id,
                case_id=duplicate.id,
                tracking_code=new_tracking_code(),
                channel=channel,
                county=submission.county,
                category=category,
                organisation_id=route_id,
                received_at=now,
                acceptance_due=now + timedelta(days=self.settings.acceptance_days),
                request_hash=digest,
            )
            return await self._link_anonymous(receipt, by=registered_by)
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
                    case_event(
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
        return Prepared(case=case, events=events, fingerprints=fingerprints, seen=seen, digest=digest)

    async def _finish(self, prepared: Prepared, *, created: bool) -> Registration:
        """After the write: index a new case, or replay the one another writer stored first."""
        case = prepared.case
        if not created:
            raced = await self.repo.get_case(case.id)  # the winner's version 1, rolled forward
            if raced is None:
                raise Conflict("案件登记冲突，请重试", "registration collided; retry")
            return await self._replayed(raced, prepared.digest)
        self.metrics.received.labels(case.county, case.channel, case.category).inc()
        await self._index(case, prepared.fingerprints, seen=prepared.seen)
        return Registration(case=case, created=True)

    async def _organisations_in(
        self, county: str, cache: dict[str, Awaitable[list[Organisation]]] | None
    ) -> list[Organisation]:
        if cache is None:
            return await self.repo.organisations_in(county)
        if county not in cache:
            cache[county] = asyncio.ensure_future(self.repo.organisations_in(county))
        return await cache[county]

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

    async def _replayed_receipt(self, receipt: SubmissionReceipt, digest: str) -> Registration:
        """A retried anonymous submission: the same receipt, its link finished if a crash
        stopped it."""
        if receipt.request_hash != digest:
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
        registration = await self._link_anonymous(receipt, by="citizen")
        return Registration(case=registration.case, created=False, linked=True, receipt=receipt)

    async def _link_anonymous(self, receipt: SubmissionReceipt, *, by: str) -> Registration:
        """Link an anonymous repeat to the case it repeats, for the desk only.

        Nobody has checked who sent it (anyone may type someone's ID number into the web
        form), so the submitter gets a receipt of their own and the repeat counts as no
        visit of the applicant: the desk sees it on the case, unverified, and contacts the
        submitter. The receipt is stored first, so that a retry finds it and finishes."""
        await self.repo.put_receipt(receipt)

        def build(current: CaseDoc, at: datetime) -> Change:
            # Recorded even if the case closed meanwhile: the desk decides, and the
            # submitter must not learn the other case's state from the answer.
            link = DuplicateLink(
                submission_id=receipt.id,
                channel=receipt.channel,
                at=at,
                by=by,
                verified=False,
                tracking_code=receipt.tracking_code,
            )
            return Change(
                status=current.status,
                note=f"未经核实的重复申请已并入本案（{receipt.channel}），请联系申请人核实",
                push={"duplicate_links": link.model_dump(mode="python")},
                events=[(DuplicateLinked, {"channel": receipt.channel})],
            )

        applied = await self._apply(
            receipt.case_id, action="link_duplicate", action_id=f"link:{receipt.id}", by=by, build=build
        )
        await self.repo.put_link(receipt.id, case_id=receipt.case_id, at=receipt.received_at)
        if applied.fresh:
            self.metrics.duplicates_linked.inc()
        return Registration(case=applied.case, created=True, linked=True, receipt=receipt)

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
