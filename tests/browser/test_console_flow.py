"""The console in a real browser across the real services: a citizen applies on a phone
and gets a tracking code, the desk accepts, the mediator records a session and a written
agreement, the tracking page shows the result, the leadership figures move, and a user of
another county cannot open the case by its URL. Every page is photographed for review."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devkit.mesh import Mesh
from tests.browser.conftest import OFFICE, PHONE, Shots, open_page, sign_in, unlabelled_fields
from tests.browser.registry import MEDIATOR, refer_from_a_court
from tiaojie.infra import synthetic
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def wait_until(check: Callable[[], bool], page: Page, *, timeout: float = 120, what: str) -> None:
    """Reload until the page shows what the events should bring (bounded, not timed)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        page.wait_for_timeout(1000)
        page.reload()


def kpi(page: Page, name: str) -> int:
    return int(page.locator(f"[data-testid=kpi-{name}]").inner_text().replace(",", ""))


def test_dispute_from_phone_to_agreement_in_the_browser(
    chromium: Browser, console_url: str, shots: Shots
) -> None:
    base = console_url
    rng = random.Random()
    id_number = synthetic.id_number(rng, "371302")
    phone = synthetic.mobile(rng)
    bad_id = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    html: dict[str, str] = {}  # pages staff and the public saw, checked for personal data at the end

    # -- the leadership's figures before ---------------------------------------------------------
    leader = sign_in(chromium, base, "bureau.lanshan")
    leader.goto(f"{base}/leader")
    received_before, resolved_before = kpi(leader, "received"), kpi(leader, "resolved")

    # -- 掌上办 on a 360 px phone -------------------------------------------------------------
    citizen = open_page(chromium, PHONE)
    citizen.goto(base)
    shots(citizen, "home")
    citizen.get_by_role("link", name="申请调解（掌上办）").click()
    expect(citizen.get_by_role("heading", name="申请人民调解")).to_be_visible()
    assert unlabelled_fields(citizen) == []
    shots(citizen, "apply")
    citizen.get_by_label("邻里").check()
    citizen.get_by_label("县区").select_option("371302")
    citizen.get_by_label("乡镇（街道）").select_option("371302001")
    # The township list follows the county (progressive enhancement).
    assert citizen.locator("#township option[value='371311001']").count() == 0
    citizen.locator("#applicants-0-name").fill("王小明")
    citizen.locator("#applicants-0-id_number").fill(bad_id)
    citizen.locator("#applicants-0-phone").fill(phone)
    citizen.locator("#respondents-0-name").fill("李大强")
    citizen.get_by_label("请描述纠纷经过和您的诉求").fill(
        "邻居在两家中间的过道堆放杂物，影响通行，多次沟通无果，希望调解。"
    )
    citizen.get_by_role("button", name="提交申请").click()
    # The service's own reason, next to the field, and the field marked invalid.
    error = citizen.locator("#applicants-0-id_number-error")
    expect(error).to_have_text("身份证号码校验位错误")
    expect(citizen.locator("#applicants-0-id_number")).to_have_attribute("aria-invalid", "true")
    expect(citizen.locator("#applicants-0-name")).to_have_value("王小明")
    expect(citizen.locator("#error-summary")).to_be_focused()
    shots(citizen, "apply-errors")
    citizen.locator("#applicants-0-id_number").fill(id_number)
    citizen.get_by_role("button", name="提交申请").click()
    code = citizen.locator("[data-testid=tracking-code]").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{10}", code), code
    shots(citizen, "applied")
    html["applied"] = citizen.content()

    citizen.goto(f"{base}/track")
    citizen.get_by_label("查询码").fill(code.lower())
    citizen.get_by_role("button", name="查询").click()
    expect(citizen.locator("[data-testid=track-status]")).to_have_text("已登记")
    shots(citizen, "track-received")

    # -- the desk accepts ---------------------------------------------------------------------------
    desk = sign_in(chromium, base, "desk.lanshan")
    assert desk.url.endswith("/desk")
    shots(desk, "desk-queue")
    links = [a.get_attribute("href") for a in desk.locator("table a").all()]
    case_url = ""
    for href in links:
        desk.goto(f"{base}{href}")
        if desk.locator("[data-testid=case-tracking-code]").inner_text() == code:
            case_url = f"{base}{href}"
            break
    assert case_url, "the desk's queue does not show the citizen's application"
    expect(desk.locator("[data-testid=next-deadline]")).to_contain_text("受理期限")
    expect(desk.locator("[data-testid=risk-level]")).to_be_visible()
    expect(desk.get_by_role("heading", name="风险与重复")).to_be_visible()
    assert unlabelled_fields(desk) == []
    html["case-received"] = desk.content()
    shots(desk, "case-received")
    desk.locator("#act-accept summary").click()
    desk.locator("#act-accept").get_by_role("button", name="受理").click()
    expect(desk.locator("main > p[role=status]")).to_have_text("已受理，案号已生成。")
    case_number = desk.locator("h1").inner_text()
    assert re.search(r"\(\d{4}\).+人调字第\d+号", case_number), case_number
    expect(desk.locator("[data-testid=next-deadline]")).to_contain_text("调解期限")
    shots(desk, "case-accepted")

    # -- the registry's mediator for 兰山街道; a centre user reassigns if it chose another ----------
    wait_until(
        lambda: desk.locator("[data-testid=mediator]").inner_text() != "尚未指派",
        desk,
        what="mediator assigned",
    )
    mediator = sign_in(chromium, base, "mediator.lanshan")
    if mediator.locator(f"a[href='{case_url.removeprefix(base)}']").count() == 0:
        centre = sign_in(chromium, base, "centre.lanshan")
        centre.goto(case_url)
        centre.locator("#act-reassign summary").click()
        centre.locator("#reassign-mediator_id").select_option(MEDIATOR)
        centre.locator("#reassign-reason").fill("熟悉该片区情况")
        centre.get_by_role("button", name="重新指派").click()
        expect(centre.locator("main > p[role=status]")).to_have_text("已重新指派调解员。")
    wait_until(
        lambda: mediator.locator(f"a[href='{case_url.removeprefix(base)}']").count() == 1,
        mediator,
        what="the case in the mediator's list",
    )
    shots(mediator, "mediator-cases")
    html["mediator-cases"] = mediator.content()
    mediator.goto(case_url)
    wait_until(lambda: "已指派" in mediator.locator("h1").inner_text(), mediator, what="case assigned")
    mediator.locator("#act-session summary").click()
    session = mediator.locator("#act-session")
    expect(session.get_by_label("调解时间")).not_to_have_value("")  # prefilled with now
    session.get_by_label("地点").fill("兰山街道人民调解委员会调解室")
    session.get_by_label("参加人员").fill("申请人、被申请人、调解员")
    session.get_by_label("调解笔录").fill("双方陈述意见，经释法说理，被申请人同意清理过道。")
    session.get_by_role("button", name="记录调解").click()
    expect(mediator.locator("main > p[role=status]")).to_have_text("调解记录已保存。")
    expect(mediator.locator("h1")).to_contain_text("调解中")
    mediator.locator("#act-resolve summary").click()
    resolve = mediator.locator("#act-resolve")
    resolve.get_by_label("协议形式").select_option("written")
    resolve.get_by_label("协议金额（元）").fill("500")
    resolve.get_by_label("协议摘要").fill("被申请人三日内清理过道杂物并赔偿申请人500元")
    resolve.get_by_label("协议书全文").fill(
        "经调解，双方自愿达成如下协议：一、被申请人于三日内清理过道杂物；二、赔偿500元。"
    )
    resolve.get_by_role("button", name="调解成功（达成协议）").click()
    expect(mediator.locator("main > p[role=status]")).to_have_text("已记录调解协议，案件调解成功。")
    expect(mediator.locator("h1")).to_contain_text("调解成功")
    agreement_row = mediator.locator("tr", has_text="人民调解协议书")
    expect(agreement_row.locator(".badge")).to_have_text("已有")
    html["case-resolved"] = mediator.content()
    shots(mediator, "case-resolved")
    # The follow-up visit (回访), prefilled with today.
    mediator.locator("#act-follow_up summary").click()
    follow_up = mediator.locator("#act-follow_up")
    follow_up.get_by_label("回访方式").select_option("phone")
    follow_up.get_by_label("当事人是否满意").select_option("yes")
    follow_up.get_by_label("回访记录").fill("被申请人已清理过道，双方表示满意。")
    follow_up.get_by_role("button", name="回访").click()
    expect(mediator.locator("main > p[role=status]")).to_have_text("回访记录已保存。")
    expect(mediator.locator("h1")).to_contain_text("已回访")
    phone_view = open_page(chromium, PHONE)
    phone_view.context.add_cookies(mediator.context.cookies())
    phone_view.goto(case_url)
    shots(phone_view, "case-resolved")

    # -- the citizen sees the result --------------------------------------------------------------
    citizen.goto(f"{base}/track/{code}")
    expect(citizen.locator("[data-testid=track-status]")).to_have_text("已回访")
    expect(citizen.locator("[data-testid=track-milestones]")).to_contain_text("调解成功")
    expect(citizen.locator("[data-testid=track-case-number]")).to_have_text(case_number.split(" ")[0])
    html["track"] = citizen.content()
    shots(citizen, "track-resolved")

    # -- the leadership's figures follow -----------------------------------------------------------
    leader.goto(f"{base}/leader")
    wait_until(
        lambda: (
            kpi(leader, "received") == received_before + 1 and kpi(leader, "resolved") == resolved_before + 1
        ),
        leader,
        what="the leadership figures counting the case",
    )
    expect(leader.locator("[data-chart=chart-outcomes]")).to_have_attribute("data-rendered", "true")
    expect(leader.locator("[data-testid=kpi-success-rate]")).not_to_have_text("—")
    html["leader"] = leader.content()
    shots(leader, "leader")
    leader_phone = open_page(chromium, PHONE)
    leader_phone.context.add_cookies(leader.context.cookies())
    leader_phone.goto(f"{base}/leader")
    expect(leader_phone.locator("[data-chart=chart-outcomes]")).to_have_attribute("data-rendered", "true")
    shots(leader_phone, "leader")
    with leader.expect_download() as download:
        leader.get_by_role("button", name="下载报告").click()
    assert download.value.suggested_filename.endswith(".xlsx")

    # -- another county's user cannot open the case by its URL ---------------------------------------
    other = sign_in(chromium, base, "desk.luozhuang")
    response = other.goto(case_url)
    assert response is not None and response.status == 404
    expect(other.get_by_role("heading", name="记录不存在")).to_be_visible()
    assert code not in other.content()
    shots(other, "other-county-case")
    other_leader = sign_in(chromium, base, "bureau.linyi")
    other_leader.goto(f"{base}/leader?county=371311")
    assert kpi(other_leader, "resolved") == 0

    # -- no page shows a full ID or phone number to anyone but its owner ----------------------------
    for name, content in html.items():
        assert id_number not in content, f"full ID number on {name}"
        assert phone not in content, f"full phone number on {name}"
    assert f"{id_number[:4]}**********{id_number[-4:]}" in html["case-received"]


def test_every_page_works_on_a_phone_and_an_office_screen(
    chromium: Browser, console_url: str, shots: Shots
) -> None:
    base = console_url
    pages = {
        "desk.lanshan": [("desk-new", "/desk/new")],
        "centre.lanshan": [("centre", "/centre"), ("overdue", "/centre/overdue")],
        "admin": [
            ("registry", "/registry?county=371302"),
            ("compliance", "/registry/compliance?county=371302"),
            ("import", "/registry/import"),
            ("account", "/account"),
        ],
    }
    for size in (PHONE, OFFICE):
        login = open_page(chromium, size)
        login.goto(f"{base}/login")
        shots(login, "login")
        for username, paths in pages.items():
            page = sign_in(chromium, base, username, size)
            for name, path in paths:
                response = page.goto(f"{base}{path}")
                assert response is not None and response.status == 200, path
                assert unlabelled_fields(page) == [], path
                # Nothing wider than the screen but tables, which scroll inside their frame.
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{path} is {overflow}px wider than {size['width']}px"
                shots(page, name)
            page.context.close()


def test_roster_dry_run_report_in_the_browser(chromium: Browser, console_url: str, shots: Shots) -> None:
    page = sign_in(chromium, console_url, "admin")
    page.goto(f"{console_url}/registry/import")
    page.get_by_label("名册类型").select_option("mediators")
    page.get_by_label("文件").set_input_files(str(ROOT / "tests" / "data" / "registry_mediators_broken.xlsx"))
    expect(page.get_by_label("试导入（只检查，不写入）")).to_be_checked()
    page.get_by_role("button", name="上传").click()
    report = page.locator("[data-testid=import-report]")
    expect(report).to_contain_text("未导入任何数据")
    assert report.locator("tbody tr").count() >= 1
    shots(page, "import-dry-run")


def test_keyboard_alone_reaches_and_submits_the_sign_in_form(chromium: Browser, console_url: str) -> None:
    page = open_page(chromium, PHONE)
    page.goto(f"{console_url}/login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="跳到主要内容")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("mediator.lanshan")
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type("Tiaojie-2026")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/mediator")


def test_desk_registers_a_phone_dispute_with_reasons_next_to_fields(
    chromium: Browser, console_url: str, shots: Shots
) -> None:
    page = sign_in(chromium, console_url, "desk.lanshan", PHONE)
    page.goto(f"{console_url}/desk/new")
    page.get_by_label("来电（含12345热线，须留手机号码）").check()
    page.get_by_label("县区").select_option("371302")
    page.locator("#applicants-0-name").fill("赵某某")
    page.get_by_role("button", name="添加被申请人").click()
    page.locator("#respondents-1-name").fill("钱某某")
    page.locator("#respondents-0-name").fill("孙某某")
    page.get_by_label("纠纷经过与诉求").fill("承包的装修工程完工后，对方拖欠工程款两万元，多次催要未果。")
    page.get_by_role("button", name="登记").click()
    expect(page.locator("#applicants-0-phone-error")).to_have_text("该渠道须填写申请人手机号码")
    shots(page, "desk-new-errors")
    page.locator("#applicants-0-phone").fill(synthetic.mobile(random.Random()))
    page.get_by_role("button", name="登记").click()
    expect(page.locator("main > p[role=status]")).to_have_text("纠纷已登记。")
    expect(page.locator("table", has_text="被申请人").locator("tbody tr")).to_have_count(3)
    expect(page.locator("p.muted").first).to_contain_text("来电")


def test_centre_accepts_a_court_referral_on_its_clock(
    chromium: Browser, console_url: str, mesh: Mesh, settings: RuntimeSettings, shots: Shots
) -> None:
    ref = f"(2026)鲁1302民诉前调{random.randrange(10**6)}号"
    # The court is another system (an agency over HTTP); this test plays it.
    refer_from_a_court(mesh.url("referral"), settings, agency_ref=ref)
    page = sign_in(chromium, console_url, "centre.lanshan")
    page.goto(f"{console_url}/centre")
    row = page.locator("tr", has_text=ref)
    wait_until(lambda: row.count() == 1, page, what="the referral on the centre page")
    expect(row).to_contain_text("法院")
    expect(row).to_contain_text("委派（诉前调解）")
    expect(row).to_contain_text("答复")
    shots(page, "centre-referral")
    row.get_by_role("button", name="接收").click()
    expect(page.locator("main > p[role=status]")).to_have_text("已接收转介，案件已建立。")
    accepted = page.locator("tr", has_text=ref)
    expect(accepted).to_contain_text("已接收")
    shots(page, "centre-referral-accepted")
