"""A published case as a Word document (.docx, python-docx) in the usual layout of a
typical case: title, basic facts, mediation process, result, commentary (评析)."""

from __future__ import annotations

import io

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.text.run import Run

from tiaojie.contracts.common import CASE_STATUS_LABELS, CATEGORY_LABELS
from tiaojie.contracts.library import AMOUNT_BAND_LABELS, TECHNIQUE_LABELS
from tiaojie.library.models import EntryDoc

BODY_FONT = "仿宋"
HEADING_FONT = "黑体"
TITLE_FONT = "方正小标宋简体"
DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _font(run: Run, name: str, size: float, *, bold: bool = False) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    # Word picks East Asian glyphs from w:eastAsia, not from the Latin font name.
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), name)


def _paragraphs(doc: object, text: str) -> None:
    for line in [p.strip() for p in text.splitlines() if p.strip()] or ["（无）"]:
        para = doc.add_paragraph()  # type: ignore[attr-defined]
        para.paragraph_format.first_line_indent = Pt(32)
        para.paragraph_format.line_spacing = Pt(28)
        _font(para.add_run(line), BODY_FONT, 16)


def render_docx(entry: EntryDoc, *, county_name: str | None = None) -> bytes:
    """The Word file of a published entry."""
    doc = Document()
    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _font(title.add_run(entry.title), TITLE_FONT, 22, bold=True)

    facts = [
        ("纠纷类型", CATEGORY_LABELS[entry.category]),
        ("调解方法", "、".join(TECHNIQUE_LABELS[t] for t in entry.techniques) or "—"),
        ("调解结果", CASE_STATUS_LABELS.get(entry.outcome, str(entry.outcome))),
        ("涉及金额", AMOUNT_BAND_LABELS[entry.amount_band]),
        ("年份", str(entry.year)),
        ("地区", county_name or entry.county),
    ]
    table = doc.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, value in facts:
        cells = table.add_row().cells
        _font(cells[0].paragraphs[0].add_run(label), HEADING_FONT, 12)
        _font(cells[1].paragraphs[0].add_run(value), BODY_FONT, 12)

    for heading, text in (
        ("一、基本案情", entry.summary),
        ("二、调解过程", entry.process),
        ("三、调解结果", "\n".join(t for t in (entry.result, entry.follow_up) if t)),
        ("四、评析", entry.commentary),
    ):
        para = doc.add_paragraph()
        para.paragraph_format.space_before = Pt(12)
        _font(para.add_run(heading), HEADING_FONT, 16, bold=True)
        _paragraphs(doc, text)

    note = doc.add_paragraph()
    note.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    _font(note.add_run("（本案例已作匿名化处理）"), BODY_FONT, 12)
    doc.core_properties.title = entry.title
    doc.core_properties.subject = "人民调解典型案例"
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
