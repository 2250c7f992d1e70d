"""The roster workbooks under tests/data/registry_* and how they were made.

Run `uv run python -m tests.registry.fixtures` to regenerate them. Every person is
synthetic (valid check digits, no real person). The roster is for 河东区 (371312) so it
never meets the small registries other tests file for 兰山区.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from tiaojie.infra import synthetic

DATA = Path(__file__).resolve().parents[1] / "data"
COUNTY = "371312"  # 河东区
TOWNSHIP = "371312004"  # 相公街道
CENTRE_ID = "org-371312-centre"
COMMITTEE_ID = "org-371312004-tc"
MEDICAL_ID = "org-371312-medical"

ORG_HEADER = [
    "组织编码",
    "组织名称",
    "简称",
    "组织类型",
    "层级",
    "所属县区代码",
    "行政区划代码",
    "上级组织",
    "调解纠纷类别",
    "是否备案",
    "备案日期",
    "派驻单位",
    "品牌名称",
    "创办人",
    "地址",
    "联系电话",
    "办公时间",
]
ORGANISATIONS: list[list[Any]] = [
    [
        CENTRE_ID,
        "河东区矛盾纠纷多元化解中心",
        "河",
        "一站式矛盾纠纷调解中心",
        "县级",
        COUNTY,
        COUNTY,
        None,
        None,
        "是",
        date(2023, 6, 1),
        None,
        None,
        None,
        "河东区人民大街1号",
        "0539-8888001",
        "工作日 8:30-17:30",
    ],
    # The parent is named, not coded: bureaus write names; the import resolves them.
    [
        COMMITTEE_ID,
        "相公街道人民调解委员会",
        "河相",
        "乡镇（街道）人民调解委员会",
        "乡镇级",
        COUNTY,
        TOWNSHIP,
        "河东区矛盾纠纷多元化解中心",
        None,
        "是",
        date(2022, 9, 1),
        None,
        None,
        None,
        "相公街道办事处",
        "0539-8888002",
        None,
    ],
    [
        MEDICAL_ID,
        "河东区医疗纠纷人民调解委员会",
        "河医调",
        "行业性专业性人民调解委员会",
        "县级",
        COUNTY,
        COUNTY,
        CENTRE_ID,
        "医疗",
        "是",
        date(2024, 1, 15),
        None,
        None,
        None,
        None,
        None,
        None,
    ],
    [
        "org-371312-court-room",
        "河东区人民法院诉前调解室",
        "河法调",
        "派驻调解室",
        "县级",
        COUNTY,
        COUNTY,
        CENTRE_ID,
        None,
        "是",
        date(2024, 3, 1),
        "法院",
        None,
        None,
        None,
        None,
        None,
    ],
    [
        None,  # no code: matched by name and division code on re-import
        "老兵调解工作室",
        "老兵",
        "个人调解工作室",
        "乡镇级",
        COUNTY,
        TOWNSHIP,
        COMMITTEE_ID,
        "邻里、婚姻家庭",
        "是",
        date(2024, 5, 1),
        None,
        "老兵调解",
        "王某",
        None,
        None,
        None,
    ],
]

MEDIATOR_HEADER = [
    "调解员编号",
    "姓名",
    "身份证号码",
    "手机号码",
    "所属县区代码",
    "所属调解组织",
    "专兼职",
    "政府购买服务",
    "职业背景",
    "擅长领域",
    "语言方言",
    "等级",
    "评定层级",
    "评定日期",
    "从事调解工作日期",
    "证书编号",
    "发证日期",
    "证书有效期至",
    "案件容量",
]


def mediators(seed: int = 3712) -> list[list[Any]]:
    """Committee of three (two full-time), five at the centre, three medical mediators."""
    rng = random.Random(seed)
    rows: list[list[Any]] = []

    def add(mid: str, org: str, full_time: bool, grade: str, specialties: str, background: str) -> None:
        rows.append(
            [
                mid,
                synthetic.person_name(rng),
                synthetic.id_number(rng, COUNTY),
                f"13{rng.randrange(10**9):09d}",
                COUNTY,
                org,
                "专职" if full_time else "兼职",
                "是" if full_time else "否",
                background,
                specialties,
                "普通话、临沂话",
                grade,
                "市级" if grade in ("一级", "二级") else "县级",
                date(2024, 6, 1),
                date(2019, 3, 1),
                f"HD{rng.randrange(10**6):06d}",
                date(2024, 7, 1),
                date(2029, 6, 30),
                None,
            ]
        )

    for i, (full_time, grade) in enumerate([(True, "三级"), (True, "四级"), (False, "四级")], start=1):
        add(f"med-371312004-tc-{i}", "相公街道人民调解委员会", full_time, grade, "邻里、婚姻家庭", "网格员")
    for i, grade in enumerate(["一级", "二级", "二级", "三级", "三级"], start=1):
        add(f"med-371312-centre-{i}", CENTRE_ID, True, grade, "", "退休干部")
    for i, grade in enumerate(["二级", "三级", "三级"], start=1):
        add(f"med-371312-medical-{i}", MEDICAL_ID, True, grade, "医疗", "医务人员")
    return rows


def broken_mediators() -> tuple[list[str], list[list[Any]]]:
    """A roster with one problem per row (and one good row), plus an unknown column."""
    rng = random.Random(99)
    good = mediators()[0]
    header = [*MEDIATOR_HEADER, "备注"]

    def row(**changes: Any) -> list[Any]:
        values = dict(zip(MEDIATOR_HEADER, good, strict=True))
        values["调解员编号"] = None
        values["身份证号码"] = synthetic.id_number(rng, COUNTY)
        values["证书编号"] = f"BK{rng.randrange(10**6):06d}"
        values.update(changes)
        return [*(values[h] for h in MEDIATOR_HEADER), None]

    bad_checksum = good[2][:17] + ("0" if good[2][17] != "0" else "1")
    rows = [
        row(),  # row 2: clean
        row(身份证号码=bad_checksum),  # row 3: check digit
        row(身份证号码=int(synthetic.id_number(rng, COUNTY)[:15])),  # row 4: typed as a number
        row(所属调解组织="不存在的调解委员会"),  # row 5: unknown organisation
        row(等级="一级", 评定层级="县级"),  # row 6: grade 1 is the city's to award
        row(评定日期=date(2024, 6, 1), 从事调解工作日期=date(2023, 12, 1)),  # row 7: < 1 year
        row(发证日期=date(2029, 7, 1)),  # row 8: issued after expiry
        row(姓名=None),  # row 9: name missing
        row(擅长领域="炒股"),  # row 10: no such category
        row(证书有效期至="明年"),  # row 11: not a date
        row(专兼职="有时"),  # row 12: neither full- nor part-time
    ]
    duplicate = list(rows[0])
    rows.append(duplicate)  # row 13: the same person as row 2
    return header, rows


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "花名册"
    sheet.append(header)
    for values in rows:
        sheet.append(values)
    # ID numbers and codes as text cells, as a careful bureau keeps them.
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, str):
                cell.number_format = "@"
    book.save(path)


def csv_bytes(header: list[str], rows: list[list[Any]], *, encoding: str = "gb18030") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for values in rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, date) else v for v in values])
    return out.getvalue().encode(encoding)


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    write_xlsx(DATA / "registry_organisations.xlsx", ORG_HEADER, ORGANISATIONS)
    write_xlsx(DATA / "registry_mediators.xlsx", MEDIATOR_HEADER, mediators())
    header, rows = broken_mediators()
    write_xlsx(DATA / "registry_mediators_broken.xlsx", header, rows)
    (DATA / "registry_mediators.csv").write_bytes(csv_bytes(MEDIATOR_HEADER, mediators()))


if __name__ == "__main__":
    main()
