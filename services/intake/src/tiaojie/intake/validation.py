"""Submission rules beyond the schema: identity numbers, mobiles, names, divisions,
required fields per channel. Every failure names its field in Chinese and English and
never repeats the value (it may be personal)."""

from __future__ import annotations

import unicodedata
from datetime import date

from tiaojie.contracts.common import Channel
from tiaojie.contracts.intake import DisputeSubmission, PartyIn
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import FieldError
from tiaojie.runtime.pii import PiiError, normalise_id_number, normalise_mobile

# Channels a person submits through over HTTP; system and referral arrive over Kafka.
HTTP_CHANNELS = frozenset({Channel.DESK, Channel.HOTLINE, Channel.WEB, Channel.MOBILE})
CITIZEN_CHANNELS = frozenset({Channel.WEB, Channel.MOBILE})
KAFKA_CHANNELS = frozenset({Channel.SYSTEM, Channel.HOTLINE, Channel.WEB, Channel.MOBILE})

# What each channel must carry about the first applicant, and why: a desk sees the ID
# card, a hotline operator needs a number to call back, an online application is
# real-name (实名) and needs both.
REQUIRED_PER_CHANNEL: dict[Channel, tuple[str, ...]] = {
    Channel.DESK: ("id_number",),
    Channel.HOTLINE: ("phone",),
    Channel.WEB: ("id_number", "phone"),
    Channel.MOBILE: ("id_number", "phone"),
}
_REQUIRED_TEXT = {
    "id_number": ("该渠道须填写申请人身份证号码", "this channel requires the applicant's ID number"),
    "phone": ("该渠道须填写申请人手机号码", "this channel requires the applicant's mobile number"),
}

# Separators that belong in names: the middle dot of transliterated names (阿依古丽·买买提),
# spaces, hyphens, apostrophes and full stops of Latin names.
_NAME_SEPARATORS = frozenset("·•・.-' ")
# Organisations may also carry digits and brackets: 临沂市第一人民医院（东院）.
_ORG_EXTRA = frozenset("0123456789()（）&")


def normalise_name(raw: str) -> str:
    """NFKC (full-width Latin to half-width), inner whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", raw).split())


def name_problem(name: str, *, organisation: bool = False) -> bool:
    """True if a name holds anything but letters of any script, their marks and separators:
    emoji, symbols, control and zero-width characters are refused; scripts may mix
    (Han with Latin, Uyghur, Tibetan, Mongolian), as real registered names do."""
    if not name or len(name) > 100:
        return True
    letters = 0
    for char in name:
        kind = unicodedata.category(char)
        if kind.startswith("L"):
            letters += 1
        elif kind.startswith("M") or char in _NAME_SEPARATORS or (organisation and char in _ORG_EXTRA):
            continue
        else:
            return True
    return letters == 0


def validate_submission(
    submission: DisputeSubmission,
    *,
    divisions: Divisions,
    today: date,
    http: bool,
    channel: Channel | None = None,
) -> list[FieldError]:
    """Every reason the submission cannot be registered (empty when it can). `channel`
    overrides the submission's own (a referral arrives with its channel set by intake)."""
    errors: list[FieldError] = []
    allowed = HTTP_CHANNELS if http else KAFKA_CHANNELS
    effective = channel or submission.channel
    if channel is None and submission.channel not in allowed:
        errors.append(
            FieldError(
                "channel",
                "channel_not_allowed",
                "该渠道不能通过此入口登记"
                + ("（系统对接请使用消息接口，移交案件由转介服务送达）" if http else ""),
                "this channel cannot submit here"
                + (
                    " (systems use the submissions topic; referrals arrive from the referral service)"
                    if http
                    else ""
                ),
            )
        )
    if not divisions.is_county(submission.county):
        errors.append(FieldError("county", "unknown_county", "县级行政区划代码不存在", "no such county code"))
    if submission.township:
        if not divisions.is_township(submission.township):
            errors.append(
                FieldError("township", "unknown_township", "乡镇（街道）代码不存在", "no such township code")
            )
        elif divisions.county_of(submission.township) != submission.county:
            errors.append(
                FieldError(
                    "township",
                    "township_outside_county",
                    "乡镇（街道）不属于所选县区",
                    "township is not in the given county",
                )
            )
    for i, county in enumerate(submission.related_counties):
        if not divisions.is_county(county):
            errors.append(
                FieldError(
                    f"related_counties.{i}", "unknown_county", "县级行政区划代码不存在", "no such county code"
                )
            )
    if submission.occurred_on and submission.occurred_on > today:
        errors.append(
            FieldError(
                "occurred_on",
                "in_the_future",
                "纠纷发生日期不能晚于今天",
                "the dispute cannot have happened in the future",
            )
        )
    if not submission.description.strip() or not any(
        unicodedata.category(c).startswith("L") for c in submission.description
    ):
        errors.append(
            FieldError(
                "description", "description_empty", "请用文字描述纠纷情况", "describe the dispute in words"
            )
        )
    for group, parties in (("applicants", submission.applicants), ("respondents", submission.respondents)):
        for index, party in enumerate(parties):
            errors.extend(_party_errors(f"{group}.{index}", party))
    required = REQUIRED_PER_CHANNEL.get(effective, ())
    first = submission.applicants[0] if submission.applicants else None
    if first is not None and first.kind == "person":
        for field in required:
            if getattr(first, field) is None:
                zh, en = _REQUIRED_TEXT[field]
                errors.append(FieldError(f"applicants.0.{field}", "required_for_channel", zh, en))
    return errors


def _party_errors(where: str, party: PartyIn) -> list[FieldError]:
    errors = []
    if name_problem(normalise_name(party.name), organisation=party.kind == "organisation"):
        errors.append(
            FieldError(
                f"{where}.name",
                "name_characters",
                "姓名只能包含文字（可含间隔号“·”），不能含表情符号、数字或其他符号",
                "a name may hold letters (and the middle dot ·), not emoji, digits or other symbols",
            )
        )
    if party.id_number is not None:
        if party.kind == "organisation":
            errors.append(
                FieldError(
                    f"{where}.id_number",
                    "id_for_organisation",
                    "单位当事人不填写居民身份证号码",
                    "an organisation has no resident ID number",
                )
            )
        else:
            try:
                normalise_id_number(party.id_number)
            except PiiError as exc:
                errors.append(FieldError(f"{where}.id_number", exc.code, exc.zh, exc.en))
    if party.phone is not None:
        try:
            normalise_mobile(party.phone)
        except PiiError as exc:
            errors.append(FieldError(f"{where}.phone", exc.code, exc.zh, exc.en))
    return errors
