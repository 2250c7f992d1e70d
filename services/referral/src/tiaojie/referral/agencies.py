"""Agencies: registration (topics, broker credential and ACLs, then the announcement),
rotation of the credential and deactivation.

An agency is an aggregate of the storage engine (`agencies`): recording its principal,
announcing it and deactivating it are pure decisions on its state. Every change of its
broker credential is first claimed by the unique insert of `<agency>:<seq>` into
`agency_credentials` (their audit trail), so of two administrators rotating at once, or
one rotating while another deactivates, the later is refused instead of both issuing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind
from tiaojie.contracts.envelope import derived_id, new_event
from tiaojie.contracts.referral import AgencyDeactivated, AgencyRegistered
from tiaojie.referral.core import ReferralCore
from tiaojie.referral.models import AgencyDoc
from tiaojie.referral.subjects import SOURCE
from tiaojie.runtime.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change

if TYPE_CHECKING:
    from tiaojie.referral.broker import IssuedCredential

log = get_logger(__name__)


def _agency(state: Document | None) -> AgencyDoc:
    if state is None:
        raise NotFound("机构", "agency")
    return AgencyDoc.model_validate(state)


def same_details(existing: AgencyDoc, wanted: AgencyDoc) -> bool:
    """Registering again is only the same registration with the same details."""
    return (existing.kind, existing.county, existing.name, existing.source) == (
        wanted.kind,
        wanted.county,
        wanted.name,
        wanted.source,
    )


def announced(state: Document | None, *, now: datetime) -> Change | None:
    """AgencyRegistered, once (its id is the agency's: a repeat is the same event)."""
    agency = _agency(state)
    if agency.announced:
        return None
    event = new_event(
        AgencyRegistered(agency_id=agency.id, kind=agency.kind, county=agency.county, name=agency.name),
        source=SOURCE,
        subject=agency.id,
        county=agency.county,
        id=derived_id(agency.id, "AgencyRegistered"),
        time=now,
    )
    return Change(agency.model_copy(update={"announced": True}).to_mongo(), [(topics.AGENCIES, event)])


def principal_recorded(state: Document | None, *, seq: int, principal: str) -> Change | None:
    """The principal of credential change `seq`, unless a later one (or a deactivation) is recorded."""
    agency = _agency(state)
    if not agency.active or agency.credential_seq >= seq:
        return None
    return Change(agency.model_copy(update={"kafka_principal": principal, "credential_seq": seq}).to_mongo())


def deactivated(state: Document | None, *, now: datetime) -> Change | None:
    """Inactive from now on, announced once."""
    agency = _agency(state)
    if not agency.active:
        return None
    event = new_event(
        AgencyDeactivated(agency_id=agency.id, kind=agency.kind, county=agency.county, at=now),
        source=SOURCE,
        subject=agency.id,
        county=agency.county,
        id=derived_id(agency.id, "AgencyDeactivated"),
        time=now,
    )
    return Change(agency.model_copy(update={"active": False}).to_mongo(), [(topics.AGENCIES, event)])


def _refused_while_changing() -> Conflict:
    return Conflict(
        "该机构的凭据正在被他人变更，请稍后重试",
        "another change of this credential came first; retry",
    )


def _refused_deactivated() -> Conflict:
    return Conflict("机构已停用，不能签发凭据", "the agency is deactivated: no credential is issued")


class AgencyRules(ReferralCore):
    """Registration, rotation and deactivation of agencies."""

    async def register_agency(
        self,
        *,
        agency_id: str,
        kind: AgencyKind,
        county: str,
        name: str,
        source: str | None,
        by: str,
        counties: list[str] | None = None,
    ) -> tuple[AgencyDoc, bool, IssuedCredential | None]:
        """Register an agency: its topics, its broker credential and ACLs, the announcement.
        The credential comes back once, to this caller; registering the same details again
        answers the agency without one (rotate to get a new password). An id already taken
        by an agency outside the caller's `counties` answers 404, as another county's record
        does everywhere (a 409 would confirm it exists)."""
        if not self.divisions.is_county(county):
            raise Invalid(
                [FieldError("county", "unknown_county", "县级行政区划代码不存在", "no such county code")]
            )
        now = self.clock.now()
        agency = AgencyDoc(
            id=agency_id,
            kind=kind,
            county=county,
            name=name,
            source=source or f"/agencies/{agency_id}",
            registered_at=now,
            registered_by=by,
            kafka_principal=self.access.principal(agency_id, 1),
            announced=False,
        )
        existing = await self.repo.get_agency(agency_id)
        if existing is None and await self.repo.agencies.create(agency.to_mongo()):
            credential = None
            if self.access.issues_credentials:
                credential, _ = await self._change_credential(agency, action="issued", by=by, seq=1)
            else:
                await self.access.prepare(agency_id, kind, principal=None)
            # Announced only once its topics and access exist (after a crash before this
            # line, registering again announces it).
            registered = await self._announce(agency_id, now)
            log.info("agency registered", agency_id=agency_id, kind=str(kind), county=county)
            return registered, True, credential
        current = existing or await self.repo.get_agency(agency_id)
        assert current is not None  # it existed, or another registration just created it
        if counties is not None and current.county not in counties:
            raise NotFound("机构", "agency")
        return await self._registered_again(current, agency, now), False, None

    async def _registered_again(self, existing: AgencyDoc, wanted: AgencyDoc, now: datetime) -> AgencyDoc:
        if not same_details(existing, wanted):
            raise Conflict("该机构编号已登记为其他机构", "this agency id is registered with other details")
        if not existing.active:
            return existing
        # Idempotent repairs of what a crashed registration may have left undone.
        await self.access.prepare(existing.id, existing.kind, principal=existing.kafka_principal)
        return existing if existing.announced else await self._announce(existing.id, now)

    async def _announce(self, agency_id: str, now: datetime) -> AgencyDoc:
        outcome = await self.repo.agencies.apply(agency_id, lambda s: announced(s, now=now))
        return AgencyDoc.model_validate(outcome.after)

    async def agency_in_scope(self, agency_id: str, counties: list[str]) -> AgencyDoc:
        """An agency of the caller's counties (404 for any other, as for none)."""
        agency = await self.repo.get_agency(agency_id)
        if agency is None or agency.county not in counties:
            raise NotFound("机构", "agency")
        return agency

    async def list_agencies(self, *, counties: list[str]) -> list[AgencyDoc]:
        """The agencies of the caller's counties."""
        return await self.repo.list_agencies(counties)

    async def referring_agency(self, *, agency_id: str | None) -> AgencyDoc:
        """The active agency an agency's token names (403 for none, a system, or a deactivated one)."""
        agency = await self.repo.get_agency(agency_id) if agency_id else None
        if agency is None or not agency.active or agency.kind == AgencyKind.SYSTEM:
            raise Forbidden("该令牌不属于已登记的机构", "this token belongs to no registered, active agency")
        return agency

    async def rotate_credential(
        self, *, agency_id: str, counties: list[str], by: str
    ) -> tuple[AgencyDoc, IssuedCredential]:
        """A new broker principal and password for an active agency: the old one stops
        working, on connections it opened too (its ACLs go)."""
        agency = await self.agency_in_scope(agency_id, counties)
        last = await self.repo.last_credential_change(agency_id)
        if not agency.active or (last is not None and last["action"] == "revoked"):
            raise _refused_deactivated()
        seq = (int(last["seq"]) if last else 0) + 1
        credential, rotated = await self._change_credential(agency, action="rotated", by=by, seq=seq)
        return rotated, credential

    async def _change_credential(
        self, agency: AgencyDoc, *, action: str, by: str, seq: int
    ) -> tuple[IssuedCredential, AgencyDoc]:
        """Claim change `seq` of the agency's credential, issue it, record its principal; a
        concurrent change that claimed first (or a deactivation meanwhile) wins and this one
        is refused."""
        claim = {
            "_id": f"{agency.id}:{seq}",
            "agency_id": agency.id,
            "seq": seq,
            "action": action,
            "principal": self.access.principal(agency.id, seq),
            "by": by,
            "at": self.clock.now(),
        }
        if not await self.repo.claim_credential_change(claim):
            raise _refused_while_changing()
        credential = await self.access.issue(agency.id, agency.kind, generation=seq)
        latest = await self.repo.last_credential_change(agency.id)
        if latest is not None and latest["seq"] > seq and latest["action"] == "revoked":
            # Deactivated while this credential was being issued: the revocation stands.
            await self.access.revoke(agency.id, generation=seq)
            raise _refused_deactivated()
        outcome = await self.repo.agencies.apply(
            agency.id, lambda s: principal_recorded(s, seq=seq, principal=credential.username)
        )
        return credential, AgencyDoc.model_validate(outcome.after)

    async def deactivate_agency(self, *, agency_id: str, counties: list[str], by: str) -> AgencyDoc:
        """Revoke the agency's credential and ACLs, mark it inactive, announce it."""
        agency = await self.agency_in_scope(agency_id, counties)
        last = await self.repo.last_credential_change(agency_id)
        if not agency.active:
            # Idempotent: whatever a crash left behind goes.
            if self.access.issues_credentials:
                await self.access.revoke(agency_id, generation=int(last["seq"]) if last else 1)
            return agency
        if last is not None and last["action"] == "revoked":
            seq = int(last["seq"])  # a deactivation that stopped half-way: finish it
        else:
            seq = (int(last["seq"]) if last else 0) + 1
            claim = {
                "_id": f"{agency_id}:{seq}",
                "agency_id": agency_id,
                "seq": seq,
                "action": "revoked",
                "by": by,
                "at": self.clock.now(),
            }
            if not await self.repo.claim_credential_change(claim):
                raise _refused_while_changing()
        if self.access.issues_credentials:
            await self.access.revoke(agency_id, generation=seq)
        now = self.clock.now()
        outcome = await self.repo.agencies.apply(agency_id, lambda s: deactivated(s, now=now))
        log.info("agency deactivated", agency_id=agency_id, county=agency.county)
        return AgencyDoc.model_validate(outcome.after)
