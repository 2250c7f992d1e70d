"""Vocabulary shared by every event: categories, channels, roles, risk levels, statuses.

Codes are stable ASCII identifiers (what events and APIs carry); LABELS give the Chinese
terms users see.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Dispute categories of the Ministry of Justice statistical report."""

    MARRIAGE_FAMILY = "marriage_family"
    NEIGHBOURHOOD = "neighbourhood"
    HOUSING_HOMESTEAD = "housing_homestead"
    CONTRACT = "contract"
    PRODUCTION_BUSINESS = "production_business"
    DAMAGES = "damages"
    LABOUR = "labour"
    VILLAGE_AFFAIRS = "village_affairs"
    FOREST_LAND = "forest_land"
    LAND_EXPROPRIATION = "land_expropriation"
    ENVIRONMENT = "environment"
    ROAD_TRAFFIC = "road_traffic"
    MEDICAL = "medical"
    PROPERTY_MANAGEMENT = "property_management"
    CONSUMER = "consumer"
    TOURISM = "tourism"
    INTELLECTUAL_PROPERTY = "intellectual_property"
    ECOMMERCE = "ecommerce"
    FINANCE_INSURANCE = "finance_insurance"
    CAMPUS_SAFETY = "campus_safety"
    OTHER = "other"


CATEGORY_LABELS: dict[Category, str] = {
    Category.MARRIAGE_FAMILY: "婚姻家庭",
    Category.NEIGHBOURHOOD: "邻里",
    Category.HOUSING_HOMESTEAD: "房屋宅基地",
    Category.CONTRACT: "合同",
    Category.PRODUCTION_BUSINESS: "生产经营",
    Category.DAMAGES: "损害赔偿",
    Category.LABOUR: "劳动争议",
    Category.VILLAGE_AFFAIRS: "村务管理",
    Category.FOREST_LAND: "山林土地",
    Category.LAND_EXPROPRIATION: "征地拆迁",
    Category.ENVIRONMENT: "环境污染",
    Category.ROAD_TRAFFIC: "道路交通事故",
    Category.MEDICAL: "医疗",
    Category.PROPERTY_MANAGEMENT: "物业",
    Category.CONSUMER: "消费",
    Category.TOURISM: "旅游",
    Category.INTELLECTUAL_PROPERTY: "知识产权",
    Category.ECOMMERCE: "电子商务",
    Category.FINANCE_INSURANCE: "金融保险",
    Category.CAMPUS_SAFETY: "校园安全",
    Category.OTHER: "其他",
}


class Channel(StrEnum):
    """How a dispute reached us."""

    DESK = "desk"  # 来访: walk-in at a centre or judicial office
    HOTLINE = "hotline"  # 来电: phone, including the 12345 hotline
    WEB = "web"  # 网上办
    MOBILE = "mobile"  # 掌上办
    SYSTEM = "system"  # another system over the submissions topic
    REFERRAL = "referral"  # handed over by an agency or another body


CHANNEL_LABELS: dict[Channel, str] = {
    Channel.DESK: "来访",
    Channel.HOTLINE: "来电",
    Channel.WEB: "网上办",
    Channel.MOBILE: "掌上办",
    Channel.SYSTEM: "系统对接",
    Channel.REFERRAL: "移交",
}


class RiskLevel(StrEnum):
    """Risk level of a dispute, from explainable signals."""

    ORDINARY = "ordinary"  # 一般
    SERIOUS = "serious"  # 较大
    GRAVE = "grave"  # 重大


RISK_LABELS: dict[RiskLevel, str] = {
    RiskLevel.ORDINARY: "一般",
    RiskLevel.SERIOUS: "较大",
    RiskLevel.GRAVE: "重大",
}


class Role(StrEnum):
    """Roles carried in access tokens."""

    CITIZEN = "citizen"
    DESK = "desk"
    MEDIATOR = "mediator"
    CENTER = "center"
    BUREAU = "bureau"
    AGENCY = "agency"
    ADMIN = "admin"


class AgencyKind(StrEnum):
    """Bodies that refer disputes to mediation."""

    COURT = "court"  # 诉调
    POLICE = "police"  # 警调
    PETITION = "petition"  # 访调
    HOTLINE = "hotline"  # 12345
    GOVERNMENT = "government"  # other government departments
    # Not a referring body: a system that submits disputes on intake.submissions.v1 (grid
    # management, the 12345 platform's intake) and holds a broker credential for that alone.
    SYSTEM = "system"


class CaseStatus(StrEnum):
    """States of the case lifecycle (DESIGN.md §2)."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ASSIGNED = "assigned"
    IN_MEDIATION = "in_mediation"
    RESOLVED = "resolved"
    FAILED = "failed"
    FOLLOWED_UP = "followed_up"
    ARCHIVED = "archived"
    WITHDRAWN = "withdrawn"
    TRANSFERRED = "transferred"


CASE_STATUS_LABELS: dict[CaseStatus, str] = {
    CaseStatus.RECEIVED: "已登记",
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.REJECTED: "不予受理",
    CaseStatus.ASSIGNED: "已指派",
    CaseStatus.IN_MEDIATION: "调解中",
    CaseStatus.RESOLVED: "调解成功",
    CaseStatus.FAILED: "调解不成",
    CaseStatus.FOLLOWED_UP: "已回访",
    CaseStatus.ARCHIVED: "已归档",
    CaseStatus.WITHDRAWN: "已撤回",
    CaseStatus.TRANSFERRED: "已转办",
}


class OrganisationKind(StrEnum):
    """Kinds of mediation organisation (调解组织)."""

    VILLAGE_COMMITTEE = "village_committee"  # 村/社区人民调解委员会
    TOWNSHIP_COMMITTEE = "township_committee"  # 乡镇/街道人民调解委员会
    ENTERPRISE_COMMITTEE = "enterprise_committee"  # 企事业单位调委会
    INDUSTRY_COMMITTEE = "industry_committee"  # 行业性专业性调委会
    STATIONED_ROOM = "stationed_room"  # 派驻调解室 (court / police / petition)
    PERSONAL_ROOM = "personal_room"  # 个人调解室
    CENTRE = "centre"  # 一站式调解中心 (city / county / township)


class DivisionLevel(StrEnum):
    """Administrative level an organisation sits at."""

    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


class MediatorGrade(StrEnum):
    """Mediator grades: 一级 is the highest."""

    FIRST = "1"  # 一级 (city)
    SECOND = "2"  # 二级 (city)
    THIRD = "3"  # 三级 (county)
    FOURTH = "4"  # 四级 (county)


class MediatorStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
