"""The library's HTTP routes: thin adapters from requests to the rules.

Suggestions: `GET /api/v1/suggestions?case=ID` ranks by what the library learnt of the
open case from intake's events (its category) plus any techniques named; the description
of an open case is not on intake's events (it may hold personal data), so a caller that
has it (the console, on a mediator's screen) sends it in the body of
`POST /api/v1/suggestions` — a body, never a URL, so it stays out of access logs; the
library uses it for that one query and keeps nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import CASE_STATUS_LABELS, CATEGORY_LABELS, CaseStatus, Category, Role
from tiaojie.contracts.library import (
    AMOUNT_BAND_LABELS,
    ENTRY_STATUS_LABELS,
    TECHNIQUE_LABELS,
    AmountBand,
    EntryStatus,
    Technique,
)
from tiaojie.library.export import DOCX_MEDIA_TYPE, render_docx
from tiaojie.library.models import EntryDoc, HistoryEntry
from tiaojie.library.search import Filters, Hit
from tiaojie.library.service import Edit, LibraryService, Suggestion
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.runtime.errors import Conflict

router = APIRouter(prefix="/api/v1", tags=["library"])

COUNTY = r"^\d{6}$"


def get_service(request: Request) -> LibraryService:
    return request.app.state.library


Service = Annotated[LibraryService, Depends(get_service)]
Staff = Annotated[
    Principal, Depends(require_roles(Role.MEDIATOR, Role.CENTER, Role.BUREAU, Role.DESK, Role.ADMIN))
]
Curator = Annotated[Principal, Depends(require_roles(Role.BUREAU))]


class HistoryOut(BaseModel):
    at: datetime
    action: str
    by: str
    status: EntryStatus
    note: str
    changed: list[str]

    @classmethod
    def of(cls, h: HistoryEntry) -> HistoryOut:
        return cls(at=h.at, action=h.action, by=h.by, status=h.status, note=h.note, changed=h.changed)


class EntryOut(BaseModel):
    """An entry as staff see it: anonymised texts, tags and (for its county) its history."""

    id: str
    version: int
    status: EntryStatus
    status_label: str
    county: str
    township: str | None
    category: Category
    category_label: str
    techniques: list[Technique]
    technique_labels: list[str]
    outcome: CaseStatus
    outcome_label: str
    amount_band: AmountBand
    amount_band_label: str
    year: int
    title: str
    summary: str
    process: str
    result: str
    commentary: str
    follow_up: str
    note: str
    nominated_at: datetime
    published_at: datetime | None
    case_id: str | None = Field(description="the original case, shown only within its county")
    history: list[HistoryOut] = Field(description="every curation step, shown only within its county")

    @classmethod
    def of(cls, e: EntryDoc, principal: Principal) -> EntryOut:
        own = e.county in principal.counties
        return cls(
            id=e.id,
            version=e.version,
            status=e.status,
            status_label=ENTRY_STATUS_LABELS[e.status],
            county=e.county,
            township=e.township,
            category=e.category,
            category_label=CATEGORY_LABELS[e.category],
            techniques=e.techniques,
            technique_labels=[TECHNIQUE_LABELS[t] for t in e.techniques],
            outcome=e.outcome,
            outcome_label=CASE_STATUS_LABELS.get(e.outcome, str(e.outcome)),
            amount_band=e.amount_band,
            amount_band_label=AMOUNT_BAND_LABELS[e.amount_band],
            year=e.year,
            title=e.title,
            summary=e.summary,
            process=e.process,
            result=e.result,
            commentary=e.commentary,
            follow_up=e.follow_up,
            note=e.note if own else "",
            nominated_at=e.nominated_at,
            published_at=e.published_at,
            case_id=e.case_id if own else None,
            history=[HistoryOut.of(h) for h in e.history] if own else [],
        )


class EntryBrief(BaseModel):
    id: str
    version: int
    status: EntryStatus
    status_label: str
    county: str
    category: Category
    title: str
    year: int
    nominated_at: datetime

    @classmethod
    def of(cls, e: EntryDoc) -> EntryBrief:
        return cls(
            id=e.id,
            version=e.version,
            status=e.status,
            status_label=ENTRY_STATUS_LABELS[e.status],
            county=e.county,
            category=e.category,
            title=e.title,
            year=e.year,
            nominated_at=e.nominated_at,
        )


class EditIn(BaseModel):
    """Changes a curator makes; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int | None = Field(default=None, ge=1, description="the version edited (409 if it changed)")
    title: str | None = Field(default=None, min_length=1, max_length=100)
    summary: str | None = Field(default=None, min_length=1, max_length=5000)
    process: str | None = Field(default=None, max_length=20000)
    result: str | None = Field(default=None, max_length=5000)
    commentary: str | None = Field(default=None, max_length=5000)
    follow_up: str | None = Field(default=None, max_length=5000)
    category: Category | None = None
    techniques: list[Technique] | None = Field(default=None, max_length=len(Technique))
    outcome: CaseStatus | None = None


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=500)
    version: int | None = Field(default=None, ge=1)


class HitOut(BaseModel):
    id: str
    score: float
    title: str
    category: str
    category_label: str
    techniques: list[str]
    technique_labels: list[str]
    county: str
    outcome: str
    year: int
    amount_band: str
    snippet: str
    shared_terms: list[str]

    @classmethod
    def of(cls, h: Hit) -> HitOut:
        return cls(
            id=h.entry_id,
            score=h.score,
            title=h.title,
            category=h.category,
            category_label=CATEGORY_LABELS[Category(h.category)],
            techniques=h.techniques,
            technique_labels=[TECHNIQUE_LABELS[Technique(t)] for t in h.techniques],
            county=h.county,
            outcome=h.outcome,
            year=h.year,
            amount_band=h.amount_band,
            snippet=h.snippet,
            shared_terms=h.shared_terms,
        )


class SearchOut(BaseModel):
    total: int
    limit: int
    offset: int
    hits: list[HitOut]


class SuggestionOut(HitOut):
    reason: str = Field(description="why this case is suggested (shared terms, category, techniques)")
    same_category: bool
    shared_techniques: list[str]

    @classmethod
    def of_suggestion(cls, s: Suggestion) -> SuggestionOut:
        parts = []
        if s.hit.shared_terms:
            parts.append("共同关键词：" + "、".join(s.hit.shared_terms[:5]))
        if s.same_category:
            parts.append(f"同为{CATEGORY_LABELS[Category(s.hit.category)]}纠纷")
        if s.shared_techniques:
            parts.append("同样采用" + "、".join(TECHNIQUE_LABELS[Technique(t)] for t in s.shared_techniques))
        return cls(
            **HitOut.of(s.hit).model_dump(),
            reason="；".join(parts) or "相近案例",
            same_category=s.same_category,
            shared_techniques=s.shared_techniques,
        )


class SuggestionsOut(BaseModel):
    case_id: str
    suggestions: list[SuggestionOut]


class SuggestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    case_id: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=5000)
    techniques: list[Technique] = Field(default_factory=list, max_length=len(Technique))


# -- curation ---------------------------------------------------------------------------
@router.get(
    "/entries", response_model=list[EntryBrief], summary="Entries of the caller's counties (curation)"
)
async def list_entries(
    principal: Staff,
    service: Service,
    status: EntryStatus | None = None,
    county: Annotated[str | None, Query(pattern=COUNTY)] = None,
) -> list[EntryBrief]:
    entries = await service.list_entries(principal=principal, status=status, county=county)
    return [EntryBrief.of(e) for e in entries]


@router.get(
    "/entries/{entry_id}", response_model=EntryOut, summary="A published entry, or one of your county"
)
async def get_entry(entry_id: str, principal: Staff, service: Service) -> EntryOut:
    return EntryOut.of(await service.get(entry_id=entry_id, principal=principal), principal)


@router.patch(
    "/entries/{entry_id}",
    response_model=EntryOut,
    summary="Edit texts and tags (bureau); personal data is refused per field",
    responses={404: {}, 409: {}, 422: {}},
)
async def edit_entry(entry_id: str, body: EditIn, principal: Curator, service: Service) -> EntryOut:
    edit = Edit(**body.model_dump(exclude={"version"}, exclude_none=True))
    entry = await service.edit(entry_id=entry_id, principal=principal, edit=edit, version=body.version)
    return EntryOut.of(entry, principal)


@router.post(
    "/entries/{entry_id}/publish",
    response_model=EntryOut,
    summary="Publish (bureau only; refused while personal data remains)",
    responses={404: {}, 409: {}, 422: {}},
)
async def publish_entry(
    entry_id: str, principal: Curator, service: Service, body: VersionIn | None = None
) -> EntryOut:
    entry = await service.publish(
        entry_id=entry_id, principal=principal, version=body.version if body else None
    )
    return EntryOut.of(entry, principal)


@router.post("/entries/{entry_id}/decline", response_model=EntryOut, summary="Decline a nomination (bureau)")
async def decline_entry(entry_id: str, body: ReasonIn, principal: Curator, service: Service) -> EntryOut:
    entry = await service.decline(
        entry_id=entry_id, principal=principal, reason=body.reason, version=body.version
    )
    return EntryOut.of(entry, principal)


@router.post(
    "/entries/{entry_id}/withdraw", response_model=EntryOut, summary="Withdraw a published case (bureau)"
)
async def withdraw_entry(entry_id: str, body: ReasonIn, principal: Curator, service: Service) -> EntryOut:
    entry = await service.withdraw(
        entry_id=entry_id, principal=principal, reason=body.reason, version=body.version
    )
    return EntryOut.of(entry, principal)


@router.get(
    "/entries/{entry_id}/document",
    summary="A published case as a Word document (.docx)",
    response_class=Response,
    responses={200: {"content": {DOCX_MEDIA_TYPE: {}}}, 404: {}, 409: {}},
)
async def export_entry(entry_id: str, principal: Staff, service: Service, request: Request) -> Response:
    entry = await service.get(entry_id=entry_id, principal=principal)
    if entry.status != EntryStatus.PUBLISHED:
        raise Conflict("只能导出已发布的案例", "only published cases can be exported")
    divisions = request.app.state.divisions
    county_name = divisions.name(entry.county) if divisions is not None else None
    content = render_docx(entry, county_name=county_name)
    return Response(
        content,
        media_type=DOCX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="case-{entry.id}.docx"'},
    )


# -- search and suggestions --------------------------------------------------------------------
@router.get("/search", response_model=SearchOut, summary="Full-text search of published cases, with filters")
async def search(
    principal: Staff,
    service: Service,
    q: Annotated[str, Query(max_length=500, description="words to look for (Chinese)")] = "",
    category: Category | None = None,
    technique: Annotated[
        list[Technique] | None, Query(description="repeat for several (all must match)")
    ] = None,
    county: Annotated[str | None, Query(pattern=COUNTY)] = None,
    outcome: CaseStatus | None = None,
    year: Annotated[int | None, Query(ge=1990, le=2100)] = None,
    amount_band: AmountBand | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
    offset: Annotated[int, Query(ge=0, le=10000)] = 0,
) -> SearchOut:
    limit = min(limit, service.settings.search_max_limit)
    filters = Filters(
        category=category,
        techniques=tuple(technique or ()),
        county=county,
        outcome=outcome,
        year=year,
        amount_band=amount_band,
    )
    page = await service.search(text=q, filters=filters, limit=limit, offset=offset)
    return SearchOut(total=page.total, limit=limit, offset=offset, hits=[HitOut.of(h) for h in page.hits])


@router.get(
    "/suggestions",
    response_model=SuggestionsOut,
    summary="Published cases like an open case (by its category and the techniques named)",
)
async def suggestions_for_case(
    principal: Staff,
    service: Service,
    case: Annotated[str, Query(min_length=1, max_length=100, description="the open case's id")],
    technique: Annotated[list[Technique] | None, Query()] = None,
) -> SuggestionsOut:
    found = await service.suggest(case_id=case, principal=principal, techniques=tuple(technique or ()))
    return SuggestionsOut(case_id=case, suggestions=[SuggestionOut.of_suggestion(s) for s in found])


@router.post(
    "/suggestions",
    response_model=SuggestionsOut,
    summary="Published cases like an open case, by its description (sent in the body, not kept)",
)
async def suggestions_for_text(body: SuggestIn, principal: Staff, service: Service) -> SuggestionsOut:
    found = await service.suggest(
        case_id=body.case_id,
        principal=principal,
        description=body.description,
        techniques=tuple(body.techniques),
    )
    return SuggestionsOut(case_id=body.case_id, suggestions=[SuggestionOut.of_suggestion(s) for s in found])
