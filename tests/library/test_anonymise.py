"""Anonymisation and the personal-data check on hostile texts: names inside sentences,
IDs with spaces or a lower-case x, phones with +86 and dashes, plates, accounts, codes,
addresses below the township."""

from __future__ import annotations

import random
import re

import pytest

from tiaojie.infra import synthetic
from tiaojie.library.anonymise import (
    Anonymiser,
    Party,
    detect_names,
    find_personal_data,
    id_checksum_ok,
    parties_of,
)

pytestmark = pytest.mark.unit


def id_with_x(county: str = "371302") -> str:
    """A valid ID number whose check digit is X (written here with a lower-case x)."""
    rng = random.Random(5)
    while True:
        value = synthetic.id_number(rng, county)
        if value.endswith("X"):
            return value[:-1] + "x"


def spaced(value: str, groups: tuple[int, ...]) -> str:
    out, at = [], 0
    for size in groups:
        out.append(value[at : at + size])
        at += size
    return " ".join(out)


def anonymise(fields: dict[str, str], parties: list[Party] | None = None) -> dict[str, str]:
    return Anonymiser().anonymise(fields, parties=parties or []).fields


def test_party_names_inside_sentences_become_consistent_pseudonyms() -> None:
    parties = [Party("王建国", "applicant"), Party("王建民", "respondent"), Party("李秀英", "respondent")]
    fields = {
        "summary": "申请人王建国与其弟王建民因老宅分割发生争执，王建民之妻李秀英也参与其中。",
        "process": "调解员分别找王建国、王建民谈话；建国表示愿意让步，李秀英同意。王建国随后签字。",
    }
    out = anonymise(fields, parties)
    for name in ("王建国", "王建民", "李秀英", "建国"):
        assert name not in out["summary"] + out["process"]
    # Two people named 王 are told apart, the same person keeps one pseudonym everywhere.
    assert out["summary"].startswith("申请人王某甲与其弟王某乙")
    assert "李某" in out["summary"] and "李某" in out["process"]
    assert out["process"].count("王某甲") == 3  # 王建国 twice and his given name alone once
    assert "王某乙" in out["process"]


def test_names_not_among_the_parties_are_found_in_context() -> None:
    text = "其子王小虎称，邻居赵德福在过道堆放杂物，孙秀英多次劝说无果；欧阳娜娜也到场作证。"
    found = detect_names(text)
    assert {"王小虎", "赵德福", "孙秀英", "欧阳娜娜"} <= set(found)
    out = anonymise({"summary": text})["summary"]
    assert not re.search("王小虎|赵德福|孙秀英|欧阳娜娜", out)
    assert "王某" in out and "赵某" in out and "孙某" in out and "欧阳某" in out


def test_ordinary_words_are_not_taken_for_names() -> None:
    text = "双方系同村村民，本村村委会出面。申请人高兴地表示和解，调解员讲明安全责任，万元赔偿分期支付。"
    assert detect_names(text) == []
    assert anonymise({"summary": text})["summary"] == text
    assert find_personal_data({"summary": text}) == []


def test_id_numbers_with_spaces_dashes_and_a_lower_case_x_are_removed() -> None:
    plain = id_with_x()
    assert id_checksum_ok(plain.upper())
    variants = [
        plain,
        spaced(plain, (6, 8, 4)),
        spaced(plain, (4, 4, 4, 4, 2)),
        "-".join([plain[:6], plain[6:14], plain[14:]]),
    ]
    for variant in variants:
        text = f"申请人（身份证号：{variant}）到场。"
        out = Anonymiser().anonymise({"summary": text})
        assert out.fields["summary"] == "申请人（身份证号：[身份证号]）到场。", variant
        assert out.replaced == {"id_number": 1}
        assert [f.kind for f in find_personal_data({"summary": text})] == ["id_number"]


@pytest.mark.parametrize(
    "phone",
    [
        "+86 138-1234-5678",
        "+86-13812345678",
        "(+86)13812345678",
        "8613812345678",
        "138 1234 5678",
        "13812345678",
    ],
)
def test_mobiles_in_any_writing_are_removed(phone: str) -> None:
    out = anonymise({"summary": f"联系电话{phone}，请勿外传。"})["summary"]
    assert out == "联系电话[电话]，请勿外传。"


def test_landlines_plates_accounts_codes_and_chat_ids_are_removed() -> None:
    text = (
        "座机0539-8123456；车牌鲁Q·12345的货车与鲁QD12345、鲁 Q A1234两车相撞；"
        "赔款汇入6222 0212 3456 7890 123，另一账户6217000012345678901；"
        "对方统一社会信用代码91371302MA3C8KXX1R，旧注册号371302000012345；"
        "微信号wxid_abc123，邮箱wang@example.com。"
    )
    out = Anonymiser().anonymise({"summary": text})
    result = out.fields["summary"]
    assert not re.search(r"\d{5,}|鲁\s?Q|wxid|@", result), result
    assert out.replaced["plate"] == 3
    assert out.replaced["credit_code"] == 1
    assert out.replaced["account"] == 3
    assert out.replaced["landline"] == 1 and out.replaced["chat_id"] == 1 and out.replaced["email"] == 1


def test_addresses_keep_only_the_township() -> None:
    text = "双方住兰山街道西关村3组12号和通达路88号2号楼3单元502室，另一方在阳光小区5号楼。"
    out = anonymise({"summary": text})["summary"]
    assert "兰山街道" in out
    for detail in ("西关", "通达路", "88号", "502室", "阳光", "5号楼", "3组"):
        assert detail not in out, detail
    assert find_personal_data({"summary": out}) == []


def test_companies_named_as_parties_or_in_text_are_replaced() -> None:
    parties = parties_of([{"role": "respondent", "name": "临沂市恒达建材有限公司"}])
    assert parties[0].kind == "organisation"
    out = anonymise({"summary": "对方单位临沂市恒达建材有限公司与山东宏图物流有限公司拖欠货款。"}, parties)
    assert "恒达" not in out["summary"] and "宏图" not in out["summary"]
    assert "甲公司" in out["summary"] and "乙公司" in out["summary"]


def test_amounts_dates_and_case_words_survive() -> None:
    text = "2025年3月5日，双方约定赔偿28000元，分三次付清，每次不少于5000元。"
    assert anonymise({"summary": text})["summary"] == text


def test_anonymising_twice_changes_nothing_more() -> None:
    parties = [Party("张伟", "applicant"), Party("张丽", "respondent")]
    once = anonymise({"summary": "张伟借给张丽五万元，电话13812345678，住兰山街道西关村3组。"}, parties)
    twice = anonymise(once)
    assert once == twice
    assert find_personal_data(once) == []


def test_the_check_names_each_field_and_kind_without_the_value() -> None:
    fields = {
        "title": "邻里纠纷案",
        "summary": "张某与李某因漏水争执。",
        "commentary": "本案中调解员王建华联系13812345678回访。",
        "result": "鲁Q12345车主赔偿。",
    }
    findings = find_personal_data(fields)
    assert {(f.field, f.kind) for f in findings} == {
        ("commentary", "name"),
        ("commentary", "mobile"),
        ("result", "plate"),
    }
    for f in findings:
        assert "13812345678" not in f.zh + f.en and "王建华" not in f.zh + f.en


def test_a_known_party_name_is_recognised_by_its_fingerprint() -> None:
    # A name that is also an ordinary word: only the fingerprint catches it.
    secret = "江河"
    fields = {"summary": f"后来{secret}去了外地。"}
    assert find_personal_data(fields, known_name=lambda s: s == secret) != []
    assert find_personal_data(fields, known_name=lambda s: False) == []
