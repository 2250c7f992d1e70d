"""What the registry accepts and stores: organisations, mediators (identity protected),
their training and disciplinary records, the case projection and assignment decisions."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from tiaojie.contracts.common import (
    Category,
    DivisionLevel,
    MediatorGrade,
    MediatorStatus,
    OrganisationKind,
)

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
COUNTY_PATTERN = r"^\d{6}$"
DIVISION_PATTERN = r"^\d{6}(\d{3})?(\d{3})?$"

ORGANISATION_KIND_LABELS: dict[OrganisationKind, str] = {
    OrganisationKind.VILLAGE_COMMITTEE: "村（居）人民调解委员会",
    OrganisationKind.TOWNSHIP_COMMITTEE: "乡镇（街道）人民调解委员会",
    OrganisationKind.ENTERPRISE_COMMITTEE: "企事业单位人民调解委员会",
    OrganisationKind.INDUSTRY_COMMITTEE: "行业性专业性人民调解委员会",
    OrganisationKind.STATIONED_ROOM: "派驻调解室",
    OrganisationKind.PERSONAL_ROOM: "个人调解工作室",
    OrganisationKind.CENTRE: "一站式矛盾纠纷调解中心",
}
LEVEL_LABELS: dict[DivisionLevel, str] = {
    DivisionLevel.CITY: "市级",
    DivisionLevel.COUNTY: "县级",
    DivisionLevel.TOWNSHIP: "乡镇级",
    DivisionLevel.VILLAGE: "村级",
}
# Committees (调委会) have 3 to 9 members; rooms and centres are not committees.
COMMITTEES = frozenset(
    {
        OrganisationKind.VILLAGE_COMMITTEE,
        OrganisationKind.TOWNSHIP_COMMITTEE,
        OrganisationKind.ENTERPRISE_COMMITTEE,
        OrganisationKind.INDUSTRY_COMMITTEE,
    }
)


class StationedAt(StrEnum):
    """Where a stationed room (派驻调解室) sits."""

    COURT = "court"  # 法院
    POLICE = "police"  # 公安派出所
    PETITION = "petition"  # 信访部门


STATIONED_LABELS: dict[StationedAt, str] = {
    StationedAt.COURT: "法院",
    StationedAt.POLICE: "公安",
    StationedAt.PETITION: "信访",
}


class Background(StrEnum):
    """Professional background of a mediator."""

    LAWYER = "lawyer"
    LEGAL_WORKER = "legal_worker"
    RETIRED_JUDGE = "retired_judge"
    RETIRED_CADRE = "retired_cadre"
    VETERAN = "veteran"
    GRID_WORKER = "grid_worker"
    TEACHER = "teacher"
    MEDICAL = "medical"
    PSYCHOLOGIST = "psychologist"
    VILLAGE_CADRE = "village_cadre"
    OTHER = "other"


BACKGROUND_LABELS: dict[Background, str] = {
    Background.LAWYER: "律师",
    Background.LEGAL_WORKER: "基层法律服务工作者",
    Background.RETIRED_JUDGE: "退休法官检察官",
    Background.RETIRED_CADRE: "退休干部",
    Background.VETERAN: "退役军人",
    Background.GRID_WORKER: "网格员",
    Background.TEACHER: "教师",
    Background.MEDICAL: "医务人员",
    Background.PSYCHOLOGIST: "心理咨询师",
    Background.VILLAGE_CADRE: "村（社区）干部",
    Background.OTHER: "其他",
}


class Prohibition(StrEnum):
    """The five prohibitions of the People's Mediation Law, art. 15."""

    FAVOURITISM = "favouritism"  # 偏袒一方当事人 / 徇私舞弊
    RETALIATION = "retaliation"  # 打击报复当事人
    HUMILIATION = "humiliation"  # 侮辱当事人、限制人身自由等侮辱处罚
    PRIVACY_LEAK = "privacy_leak"  # 泄露当事人的个人隐私、商业秘密
    GIFTS = "gifts"  # 索取、收受财物或者牟取其他不正当利益（吃请受礼）


PROHIBITION_LABELS: dict[Prohibition, str] = {
    Prohibition.FAVOURITISM: "徇私舞弊",
    Prohibition.RETALIATION: "打击报复",
    Prohibition.HUMILIATION: "侮辱处罚",
    Prohibition.PRIVACY_LEAK: "泄露隐私",
    Prohibition.GIFTS: "吃请受礼",
}


class Sanction(StrEnum):
    CRITICISM = "criticism"  # 批评教育
    WARNING = "warning"  # 警告
    SUSPENSION = "suspension"  # 暂停调解工作 (for a period)
    DISMISSAL = "dismissal"  # 罢免或者解聘


SANCTION_LABELS: dict[Sanction, str] = {
    Sanction.CRITICISM: "批评教育",
    Sanction.WARNING: "警告",
    Sanction.SUSPENSION: "暂停调解工作",
    Sanction.DISMISSAL: "罢免或解聘",
}

GRADE_LABELS: dict[MediatorGrade, str] = {
    MediatorGrade.FIRST: "一级",
    MediatorGrade.SECOND: "二级",
    MediatorGrade.THIRD: "三级",
    MediatorGrade.FOURTH: "四级",
}
STATUS_LABELS: dict[MediatorStatus, str] = {
    MediatorStatus.ACTIVE: "在岗",
    MediatorStatus.SUSPENDED: "暂停",
    MediatorStatus.REVOKED: "吊销",
}


def evaluating_level(grade: MediatorGrade) -> DivisionLevel:
    """Grades 1-2 are evaluated by the city, 3-4 by the county."""
    return (
        DivisionLevel.CITY if grade in (MediatorGrade.FIRST, MediatorGrade.SECOND) else DivisionLevel.COUNTY
    )


# -- organisations --------------------------------------------------------------------


class OrganisationIn(BaseModel):
    """An organisation as filed (备案) by a justice bureau."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, pattern=ID_PATTERN)
    name: str = Field(min_length=2, max_length=100)
    short_name: str = Field(min_length=1, max_length=20)
    kind: OrganisationKind
    level: DivisionLevel
    county: str = Field(pattern=COUNTY_PATTERN)
    division_code: str = Field(pattern=DIVISION_PATTERN)
    parent_id: str | None = Field(default=None, pattern=ID_PATTERN)
    categories: list[Category] = Field(default_factory=list, max_length=30)
    filed: bool = True
    filed_on: date | None = None
    active: bool = True
    stationed_at: StationedAt | None = None
    brand_name: str | None = Field(default=None, max_length=50)
    founder: str | None = Field(default=None, max_length=50)
    address: str | None = Field(default=None, max_length=200)
    # The office's public contact number (not a person's): shown to citizens as is.
    contact_phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+()\- ]{5,30}$")
    hours: str | None = Field(default=None, max_length=100)

    def content(self) -> dict[str, Any]:
        """The stored fields, in the form they are compared and kept in."""
        return self.model_dump(mode="json", exclude={"id"})


class OrganisationDoc(OrganisationIn):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(validation_alias=AliasChoices("_id", "id"))
    version: int = 1
    updated_at: datetime | None = None
    updated_by: str | None = None


ORGANISATION_FIELDS = tuple(f for f in OrganisationIn.model_fields if f != "id")


# -- mediators -------------------------------------------------------------------------


class RelationIn(BaseModel):
    """A person related to a mediator (spouse, relative, employer...), for conflicts of
    interest: only the keyed hash of the ID number is kept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    relation: str = Field(min_length=1, max_length=20)
    id_number: str = Field(max_length=32)


class StoredRelation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    relation: str
    key: str


class MediatorIn(BaseModel):
    """A mediator as registered (ID number and phone are personal data: stored encrypted,
    matched by keyed hash, shown masked)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=50)
    id_number: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=32)
    county: str = Field(pattern=COUNTY_PATTERN)
    organisation_ids: list[str] = Field(min_length=1, max_length=20)
    full_time: bool = False
    government_purchased: bool = False
    backgrounds: list[Background] = Field(default_factory=list, max_length=10)
    specialties: list[Category] = Field(default_factory=list, max_length=21)
    languages: list[str] = Field(default_factory=list, max_length=10)
    grade: MediatorGrade | None = None
    grade_level: DivisionLevel | None = None  # evaluating level; derived from the grade when absent
    graded_on: date | None = None
    service_started_on: date | None = None
    certificate_number: str | None = Field(default=None, max_length=50)
    certificate_issued_on: date | None = None
    certificate_expires_on: date | None = None
    # None keeps the current status (a roster re-filed must not reinstate a suspended
    # mediator); a new mediator starts active.
    status: MediatorStatus | None = None
    capacity: int | None = Field(default=None, ge=0, le=500)
    relations: list[RelationIn] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _derive(self) -> MediatorIn:
        if self.grade is not None and self.grade_level is None:
            self.grade_level = evaluating_level(self.grade)
        self.languages = [lang for lang in (s.strip() for s in self.languages) if lang][:10]
        return self


class TrainingIn(BaseModel):
    """A training record (培训): course, hours, date."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    course: str = Field(min_length=1, max_length=100)
    hours: float = Field(gt=0, le=500)
    on: date


class TrainingRecord(TrainingIn):
    model_config = ConfigDict(extra="ignore")

    id: str
    recorded_by: str = ""


class DisciplineIn(BaseModel):
    """A disciplinary record: which prohibition, the sanction and its period."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prohibition: Prohibition
    sanction: Sanction
    starts_on: date
    ends_on: date | None = None  # a suspension needs an end; dismissal has none
    note: str = Field(default="", max_length=500)


class DisciplineRecord(DisciplineIn):
    model_config = ConfigDict(extra="ignore")

    id: str
    recorded_by: str = ""


class StatusIn(BaseModel):
    """A change of a mediator's status, with the reason."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: MediatorStatus
    reason: str = Field(min_length=2, max_length=500)


class MediatorDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    version: int = 1
    name: str
    id_number_enc: str | None = None
    id_number_key: str | None = None
    id_number_masked: str | None = None
    phone_enc: str | None = None
    phone_key: str | None = None
    phone_masked: str | None = None
    county: str
    organisation_ids: list[str]
    full_time: bool = False
    government_purchased: bool = False
    backgrounds: list[Background] = Field(default_factory=list)
    specialties: list[Category] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    grade: MediatorGrade | None = None
    grade_level: DivisionLevel | None = None
    graded_on: date | None = None
    service_started_on: date | None = None
    certificate_number: str | None = None
    certificate_issued_on: date | None = None
    certificate_expires_on: date | None = None
    status: MediatorStatus = MediatorStatus.ACTIVE
    status_reason: str | None = None
    capacity: int | None = None
    relations: list[StoredRelation] = Field(default_factory=list)
    training: list[TrainingRecord] = Field(default_factory=list)
    discipline: list[DisciplineRecord] = Field(default_factory=list)
    updated_at: datetime | None = None
    updated_by: str | None = None


# Fields a registration (POST /mediators, an import row) sets; the rest (training,
# discipline, status reason) have their own operations and survive a re-registration.
MEDIATOR_CONTENT_FIELDS = (
    "name",
    "id_number_key",
    "phone_key",
    "county",
    "organisation_ids",
    "full_time",
    "government_purchased",
    "backgrounds",
    "specialties",
    "languages",
    "grade",
    "grade_level",
    "graded_on",
    "service_started_on",
    "certificate_number",
    "certificate_issued_on",
    "certificate_expires_on",
    "status",
    "capacity",
    "relations",
)


# -- cases and decisions ------------------------------------------------------------------


class CaseView(BaseModel):
    """The registry's record of a case (an aggregate, see cases.py): what assignment needs,
    who holds it, and the decisions under way and applied."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    version: int = 0
    county: str | None = None
    category: Category | None = None
    risk_level: str | None = None
    party_keys: list[str] = Field(default_factory=list)
    organisation_id: str | None = None
    mediator_id: str | None = None
    holder: str | None = None
    token: str | None = None
    closed: bool = False
    closed_status: str | None = None
    seq: int = 0
    decision_id: str | None = None
    assigned_at: datetime | None = None
    applied: list[str] = Field(default_factory=list)
    pending: list[dict[str, Any]] = Field(default_factory=list)


class DecisionDoc(BaseModel):
    """One assignment decision (automatic, manual, or failed) with its explanation."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(validation_alias=AliasChoices("_id", "id"))
    case_id: str
    seq: int
    county: str
    trigger: str
    outcome: str  # assigned | escalated | manual | failed
    mediator_id: str | None = None
    previous_mediator_id: str | None = None
    organisation_id: str | None = None
    at: datetime
    by: str
    event: dict[str, Any] = Field(default_factory=dict)  # the published payload
