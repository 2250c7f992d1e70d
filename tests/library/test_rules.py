"""Rules without servers: first tags of a nomination, the case file's texts in the layout of
a typical case, the Word document, and the index's versioning."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import docx
import pytest

from tiaojie.contracts.common import CaseStatus, Category
from tiaojie.contracts.intake import NominatedContent, NominatedSession
from tiaojie.contracts.library import AmountBand, EntryPublished, EntryStatus, Technique
from tiaojie.library.export import render_docx
from tiaojie.library.models import EntryDoc
from tiaojie.library.search import Filters, SearchIndex, Segmented
from tiaojie.library.tagging import amount_band, case_texts, detect_techniques, working_title

pytestmark = pytest.mark.unit
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_techniques_are_proposed_from_the_record() -> None:
    found = detect_techniques("调解员背对背分别做工作，会同派出所联合调解，最后申请司法确认，约定分期支付。")
    assert found == [
        Technique.BACK_TO_BACK,
        Technique.JOINT,
        Technique.JUDICIAL_CONFIRMATION,
        Technique.INSTALMENTS,
    ]
    assert detect_techniques("双方自行协商。") == []


@pytest.mark.parametrize(
    ("amount", "band"),
    [
        (None, AmountBand.NONE),
        (0, AmountBand.NONE),
        (9_999, AmountBand.UNDER_10K),
        (10_000, AmountBand.FROM_10K),
        (50_000, AmountBand.FROM_50K),
        (120_000, AmountBand.FROM_100K),
        (500_000, AmountBand.OVER_500K),
    ],
)
def test_amounts_are_banded(amount: float | None, band: AmountBand) -> None:
    assert amount_band(amount) == band


def test_the_case_file_is_arranged_as_a_typical_case() -> None:
    content = NominatedContent(
        description="  双方因过道发生争执。 ",
        sessions=[
            NominatedSession(held_at=datetime(2026, 1, 15, tzinfo=UTC), record="第二次，双方同意。"),
            NominatedSession(
                held_at=datetime(2026, 1, 5, tzinfo=UTC),
                place="村委会",
                participants="双方",
                record="第一次。",
            ),
        ],
        failure_reason="",
        agreement_text="清理杂物。",
        follow_up_record="关系缓和。",
    )
    texts = case_texts(content)
    assert texts["summary"] == "双方因过道发生争执。"
    assert texts["process"].splitlines() == [
        "第1次调解（2026年1月，村委会）：双方参加。第一次。",
        "第2次调解（2026年1月）：第二次，双方同意。",
    ]
    assert texts["result"] == "清理杂物。" and texts["follow_up"] == "关系缓和。"
    assert working_title(Category.NEIGHBOURHOOD, CaseStatus.RESOLVED) == "邻里纠纷调解成功案"


def test_the_word_document_has_the_usual_layout() -> None:
    entry = EntryDoc(
        _id="e1",
        case_id="c1",
        county="371302",
        status=EntryStatus.PUBLISHED,
        category=Category.LABOUR,
        techniques=[Technique.BACK_TO_BACK, Technique.JUDICIAL_CONFIRMATION],
        outcome=CaseStatus.RESOLVED,
        amount_band=AmountBand.FROM_10K,
        year=2025,
        title="农民工讨薪纠纷案",
        summary="张某等四人被拖欠工资。",
        process="第1次调解：背对背做工作。\n第2次调解：面对面签订协议。",
        result="分两期支付。",
        commentary="及时化解了群体性讨薪风险。",
        nominated_by="m",
        nominated_at=AT,
    )
    document = docx.Document(io.BytesIO(render_docx(entry, county_name="兰山区")))
    paragraphs = [p.text for p in document.paragraphs if p.text]
    assert paragraphs[0] == "农民工讨薪纠纷案"
    headings = [p for p in paragraphs if p[:2] in ("一、", "二、", "三、", "四、")]
    assert headings == ["一、基本案情", "二、调解过程", "三、调解结果", "四、评析"]
    assert "第2次调解：面对面签订协议。" in paragraphs
    cells = {row.cells[0].text: row.cells[1].text for row in document.tables[0].rows}
    assert cells["纠纷类型"] == "劳动争议" and cells["调解方法"] == "背对背、司法确认"
    assert cells["涉及金额"] == "1万至5万元" and cells["地区"] == "兰山区"
    run = document.paragraphs[0].runs[0]
    assert run._element.rPr.rFonts.get(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia"
    )


def published(entry_id: str, version: int, summary: str) -> Segmented:
    return Segmented.of(
        EntryPublished(
            entry_id=entry_id,
            version=version,
            county="371302",
            category=Category.NEIGHBOURHOOD,
            status=EntryStatus.PUBLISHED,
            at=AT,
            by="b",
            title="t",
            summary=summary,
            process="",
            result="",
            outcome=CaseStatus.RESOLVED,
            year=2026,
            published_at=AT,
        )
    )


def test_the_index_applies_each_version_once_and_never_goes_back() -> None:
    index = SearchIndex()
    assert index.apply(published("e1", 2, "过道堆放杂物"), entry_id="e1", version=2)
    assert not index.apply(published("e1", 2, "过道堆放杂物"), entry_id="e1", version=2)  # redelivered
    assert not index.apply(published("e1", 1, "楼上漏水"), entry_id="e1", version=1)  # older, late
    assert [h.entry_id for h in index.search("过道", Filters()).hits] == ["e1"]
    assert index.search("漏水", Filters()).total == 0
    assert index.apply(published("e1", 3, "楼上漏水"), entry_id="e1", version=3)  # an edit
    assert index.search("过道", Filters()).total == 0 and index.size == 1
    assert index.apply(None, entry_id="e1", version=4)  # withdrawn
    assert index.size == 0
    assert not index.apply(published("e1", 3, "楼上漏水"), entry_id="e1", version=3)
