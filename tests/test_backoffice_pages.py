"""The back office in a real browser (issue 13, "Done when"): an operator
prepares a session of three lots with photos in the pages, publishes it, two
bidder browsers bid, the operator hammers from the live console, and the
results CSV and the winner's sale confirmation PDF are downloaded and read
back. Every new page is checked with axe-core (WCAG 2.1 AA) and photographed
on a phone and a desktop, in both languages."""
from __future__ import annotations

import csv
import io
import re
import subprocess
import time
from pathlib import Path

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, async_playwright, expect

from test_pages import ARGS, CHROMIUM, log_in, shot

expect.set_options(timeout=20_000)
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1,
         "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
TABLET = {"viewport": {"width": 820, "height": 1180}, "device_scale_factor": 1,
          "is_mobile": True, "has_touch": True}
TITLES = ["清雍正粉彩蝠桃纹橄榄瓶", "宋代汝窑天青釉洗", "明永乐青花压手杯"]
axe = Axe()


async def check_a11y(page: Page, name: str) -> None:
    """No WCAG 2.1 A/AA violation that axe-core can find on this page as it stands."""
    results = await axe.run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, "resultTypes": ["violations"]})
    violations = results.response["violations"]
    assert not violations, f"{name}: " + "; ".join(
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in violations)


def photo(path: Path, colour: tuple[int, int, int]) -> Path:
    from PIL import Image, ImageDraw
    im = Image.new("RGB", (1200, 900), colour)
    draw = ImageDraw.Draw(im)
    for i in range(0, 1200, 60):
        draw.ellipse((i, 300, i + 50, 600), fill=(250, 250, 240))
    im.save(path, "JPEG", quality=90)
    return path


async def fits_width(page: Page, name: str) -> None:
    """Usable at this width: nothing wider than the screen (no sideways scrolling
    of the page; wide tables scroll inside their own box)."""
    over = await page.evaluate("""() => {
        const w = document.documentElement.clientWidth;
        return [...document.querySelectorAll('body *')].filter((n) => {
            const r = n.getBoundingClientRect();
            return r.width > 0 && r.right > w + 1 && !n.closest('.table-wrap');
        }).slice(0, 5).map((n) => n.tagName + '.' + n.className + ' ' + (n.dataset.testid || ''));
    }""")
    assert over == [], f"{name}: wider than the screen: {over}"
    width = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert width <= 0, f"{name}: the page scrolls sideways by {width}px"


async def view_shot(page: Page, name: str) -> None:
    """A screenshot of what the screen shows (the live console lists every room
    of the test stack: a full-page shot would be thousands of pixels tall)."""
    from test_pages import SHOTS
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def pdf_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


async def test_operator_prepares_runs_and_closes_out_a_sale(stack, hall, tmp_path):
    base = stack.base
    alice_api, alice = await hall.bidder(prefix="alice")
    bob_api, bob = await hall.bidder(prefix="bob")
    shots = [photo(tmp_path / f"p{i}.jpg", c) for i, c in
             enumerate([(150, 30, 40), (40, 90, 140), (30, 120, 70), (120, 100, 40)])]
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("this is a text file\n" * 20)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx_op = await browser.new_context(**DESKTOP, accept_downloads=True)
        await log_in(ctx_op, base, hall.operator.token, "zh")
        op = await ctx_op.new_page()
        errors: list[str] = []
        op.on("pageerror", lambda exc: errors.append(str(exc)))
        dialogs: list[str] = []
        refuse: list[bool] = []  # the next confirmation is answered "cancel"

        async def confirm(dialog) -> None:  # the publish, hammer and fair warning confirmations
            dialogs.append(dialog.message)
            await (dialog.dismiss() if refuse and refuse.pop() else dialog.accept())
        op.on("dialog", confirm)

        # -- a new session from the sessions list --------------------------------------
        await op.goto(base + "/ops/sessions")
        await op.get_by_test_id("new-session").click()
        await expect(op).to_have_url(f"{base}/ops/sessions/new")
        await op.get_by_test_id("session-save").click()
        await expect(op.get_by_test_id("s-title-err")).to_have_text("必填")  # next to the field
        await op.get_by_test_id("s-title").fill("春季瓷器专场")
        await op.get_by_test_id("s-description").fill("明清官窑瓷器，共三件。")
        await op.get_by_test_id("s-deposit").fill("100")
        await op.get_by_test_id("session-save").click()
        await expect(op.get_by_test_id("bo-session-title")).to_contain_text("春季瓷器专场")
        sid = int(re.search(r"/ops/sessions/(\d+)$", op.url).group(1))

        # -- three lots with photos; bad input shows where it is wrong -------------------
        form = op.get_by_test_id("lot-new-form")
        await form.get_by_test_id("lnew-save").click()
        await expect(op.get_by_test_id("lnew-title-err")).to_have_text("必填")
        await expect(op.get_by_test_id("lnew-start-err")).to_have_text("必填")
        await op.get_by_test_id("lnew-start").fill("-5")
        await form.get_by_test_id("lnew-save").click()
        await expect(op.get_by_test_id("lnew-start-err")).to_have_text("须为大于 0 的金额")
        await op.get_by_test_id("lnew-files").set_input_files(str(fake))
        await expect(op.get_by_test_id("lnew-files-err")).to_have_text(
            "not-a-photo.jpg: 仅支持 JPEG、PNG、WebP 图片")
        await expect(op.get_by_test_id("lnew-thumbs").get_by_test_id("photo")).to_have_count(0)
        await shot(op, "bo-lot-form-errors")
        for i, title in enumerate(TITLES):
            await op.get_by_test_id("lnew-title").fill(title)
            await op.get_by_test_id("lnew-description").fill(f"{title}，品相完好。")
            files = [str(shots[i])] + ([str(shots[3])] if i == 0 else [])
            await op.get_by_test_id("lnew-files").set_input_files(files)
            await expect(op.get_by_test_id("lnew-thumbs").get_by_test_id("photo")).to_have_count(len(files))
            await op.get_by_test_id("lnew-start").fill(str(10 * (i + 1)))
            await op.get_by_test_id("lnew-inc").fill("1")
            await op.get_by_test_id("lnew-premium").fill("10")
            await op.get_by_test_id("lnew-minutes").fill("30")
            await op.get_by_test_id("lnew-save").click()
            await expect(op.get_by_test_id("lot-card")).to_have_count(i + 1)
            await expect(op.get_by_test_id("lnew-title")).to_have_value("")
        cards = op.get_by_test_id("lot-card-title")
        await expect(cards).to_have_text([f"{i + 1}. {t}" for i, t in enumerate(TITLES)])
        # Reorder: the third lot up one place, and back.
        await op.get_by_test_id("lot-card").nth(2).get_by_test_id("lot-up").click()
        await expect(cards.nth(1)).to_have_text(f"2. {TITLES[2]}")
        await op.get_by_test_id("lot-card").nth(1).get_by_test_id("lot-down").click()
        await expect(cards).to_have_text([f"{i + 1}. {t}" for i, t in enumerate(TITLES)])
        # Editing a lot shows its fields as saved.
        await op.get_by_test_id("lot-card").nth(0).get_by_test_id("lot-edit").click()
        edit = op.get_by_test_id("lot-edit-form")
        await expect(edit.locator("input[id$='-start']")).to_have_value("10.00")
        await expect(edit.locator("input[id$='-premium']")).to_have_value("10")
        await expect(edit.get_by_test_id("photo")).to_have_count(2)
        await check_a11y(op, "session editor")
        await shot(op, "bo-session-editor-desktop")
        await op.get_by_test_id("lot-card").nth(0).get_by_test_id("lot-edit").click()
        detail = await hall.operator.get(f"/api/sessions/{sid}")
        lot_ids = [lot["id"] for lot in detail["lots"]]
        assert [lot["title"] for lot in detail["lots"]] == TITLES
        assert len(detail["lots"][0]["images"]) == 2
        assert all(u.startswith("/media/images/") for lot in detail["lots"] for u in lot["images"])

        # -- preview as bidders will see it (a draft: operators only) ------------------
        async with ctx_op.expect_page() as new_tab:
            await op.get_by_test_id("lot-card").nth(0).get_by_test_id("lot-preview").click()
        preview = await new_tab.value
        await expect(preview.get_by_test_id("lot-title")).to_have_text(TITLES[0])
        await expect(preview.get_by_test_id("lot-status")).to_have_text("草稿")
        await expect(preview.get_by_test_id("gallery-item")).to_have_count(2)
        await preview.close()

        # -- the sessions list with its filters -------------------------------------------
        await op.goto(base + "/ops/sessions")
        await op.get_by_test_id("filter-status").select_option("draft")
        await op.get_by_test_id("filter-q").fill("春季瓷器")
        await op.get_by_role("button", name="筛选").click()
        await expect(op.get_by_test_id("session-row")).to_have_count(1)
        await expect(op.get_by_test_id("session-row")).to_have_attribute("data-id", str(sid))
        await check_a11y(op, "sessions list")
        await shot(op, "bo-sessions-desktop")

        # -- publish ---------------------------------------------------------------------
        await op.get_by_test_id("session-row").click()
        await op.get_by_test_id("publish").click()
        await expect(op.get_by_test_id("bo-session-status")).to_have_text(re.compile("^(已发布|拍卖中)$"))
        await expect(op.get_by_test_id("readonly")).to_be_visible()
        await expect(op.get_by_test_id("lot-edit")).to_have_count(0)

        # -- two bidders: alice on a phone (zh), bob on a desktop (en) -------------------
        ctx_a = await browser.new_context(**PHONE, accept_downloads=True)
        await log_in(ctx_a, base, alice_api.token, "zh")
        ctx_b = await browser.new_context(**DESKTOP)
        await log_in(ctx_b, base, bob_api.token, "en")
        a, b = await ctx_a.new_page(), await ctx_b.new_page()
        for p in (a, b):
            p.on("pageerror", lambda exc: errors.append(str(exc)))
        await a.goto(f"{base}/sessions/{sid}")
        await expect(a.get_by_test_id("lot-link")).to_have_count(3)
        await expect(a.get_by_test_id("session-gallery").get_by_test_id("gallery-item")).to_have_count(4)
        await check_a11y(a, "session page")
        await shot(a, "bo-session-gallery-phone")
        await a.get_by_test_id("lot-link").first.click()
        await expect(a.get_by_test_id("lot-status")).to_have_text("拍卖中")
        # The gallery on a phone: tap to enlarge, swipe to the next photo, close.
        await a.get_by_test_id("lot-gallery").get_by_test_id("gallery-item").first.tap()
        viewer = a.get_by_test_id("viewer")
        await expect(viewer).to_be_visible()
        await expect(viewer.get_by_test_id("viewer-count")).to_have_text("1 / 2")
        await a.evaluate("""() => {
            const d = document.querySelector('[data-testid="viewer"]');
            const touch = (x) => new Touch({identifier: 1, target: d, clientX: x, clientY: 300});
            d.dispatchEvent(new TouchEvent('touchstart', {touches: [touch(300)], bubbles: true}));
            d.dispatchEvent(new TouchEvent('touchend', {changedTouches: [touch(100)], bubbles: true}));
        }""")
        await expect(viewer.get_by_test_id("viewer-count")).to_have_text("2 / 2")
        await expect(viewer.get_by_test_id("viewer-img")).to_have_attribute(
            "src", detail["lots"][0]["images"][1])
        await check_a11y(a, "gallery viewer")
        await shot(a, "bo-gallery-viewer-phone")
        await viewer.get_by_test_id("viewer-close").click()
        await expect(viewer).to_be_hidden()

        # Deposits (one session deposit each) and bids: alice wins lot 1, bob lot 2.
        await a.get_by_test_id("deposit-scope-session").check()
        await a.get_by_test_id("deposit-pay").click()
        await expect(a.get_by_test_id("deposit-paid")).to_be_visible()
        await b.goto(f"{base}/lots/{lot_ids[0]}")
        await b.get_by_test_id("deposit-scope-session").check()
        await b.get_by_test_id("deposit-pay").click()
        await expect(b.get_by_test_id("deposit-paid")).to_be_visible()
        await b.get_by_test_id("bid-button").click()
        await expect(b.get_by_test_id("room-notice")).to_have_text("Bid accepted #1")
        await expect(a.get_by_test_id("price")).to_have_text("¥10.00")
        await a.get_by_test_id("bid-button").click()
        await expect(a.get_by_test_id("room-notice")).to_have_text("出价成功 #2")
        await expect(b.get_by_test_id("price")).to_have_text("¥11.00")
        await b.goto(f"{base}/lots/{lot_ids[1]}")
        await b.get_by_test_id("bid-button").click()
        await expect(b.get_by_test_id("room-notice")).to_have_text("Bid accepted #1")

        # -- the live console ----------------------------------------------------------------
        # The main navigation has the back office for an operator (and never for a bidder).
        await op.goto(base + "/ops")
        nav = op.get_by_test_id("nav-ops")
        await expect(nav.locator("a")).to_have_text(["场次", "现场", "竞买人", "订单", "任务", "审计"])
        await expect(nav.get_by_test_id("nav-nav_ops_live")).to_have_attribute("aria-current", "page")
        await expect(b.get_by_test_id("nav-me")).to_be_visible()
        await expect(b.get_by_test_id("nav-ops")).to_have_count(0)
        for lid in lot_ids:
            row = op.locator(f'[data-testid="room-row"][data-lot-id="{lid}"]')
            await expect(row.get_by_test_id("room-status")).to_have_text("拍卖中")
            # Only what a live lot allows: no "open" or "resume" buttons.
            await expect(row.get_by_test_id("ctl-open")).to_have_count(0)
            await expect(row.get_by_test_id("ctl-resume")).to_have_count(0)
        # The console on a phone and a tablet, the lots still live.
        ctx_small = {}
        for kind, opts in (("phone", PHONE), ("tablet", TABLET)):
            ctx_small[kind] = await browser.new_context(**opts)
            await log_in(ctx_small[kind], base, hall.operator.token, "zh")
            small = await ctx_small[kind].new_page()
            small.on("pageerror", lambda exc: errors.append(str(exc)))
            await small.goto(base + "/ops")
            srow = small.locator(f'[data-testid="room-row"][data-lot-id="{lot_ids[0]}"]')
            await expect(srow.get_by_test_id("ctl-hammer")).to_be_visible()
            # Buttons keep their words on one line (they wrapped a character a line once).
            # Measured in one go: the pushed overview may redraw the row between two calls.
            heights = await srow.locator("button").evaluate_all(
                "bs => bs.map(b => [b.textContent, b.getBoundingClientRect().height])")
            assert heights and all(h < 48 for _, h in heights), (kind, heights)
            await srow.scroll_into_view_if_needed()
            await fits_width(small, f"ops {kind}")
            await check_a11y(small, f"ops {kind}")
            await view_shot(small, f"ops_{kind}")
            await small.close()
        # Fair warning on the third lot (nobody bids on it), as a clerk gives it:
        # asked first, then a state of its own counting down, in the room too.
        watcher = await ctx_b.new_page()
        await watcher.goto(f"{base}/lots/{lot_ids[2]}")
        await expect(watcher.get_by_test_id("lot-status")).to_have_text("Live")
        row3 = op.locator(f'[data-testid="room-row"][data-lot-id="{lot_ids[2]}"]')
        await row3.get_by_test_id("ctl-fair-warning").click()
        warn = row3.get_by_test_id("room-status")
        await expect(warn).to_have_attribute("data-state", "fair_warning")
        await expect(warn).to_have_text(re.compile(r"^最后警告 · ([1-9]|10) 秒$"))
        first = await warn.text_content()
        await expect(warn).not_to_have_text(first)  # it counts down
        await expect(warn).to_have_text(re.compile(r"^最后警告 · [0-9] 秒$"))
        await expect(watcher.get_by_test_id("room-notice")).to_have_text("Fair warning! Going, going…")
        await expect(watcher.get_by_test_id("lot-status")).to_have_text("Fair warning")  # its own state
        await view_shot(op, "ops-fair-warning")
        # The hammer asks first, with the lot, price and time left: cancelled, nothing happens.
        row1 = op.locator(f'[data-testid="room-row"][data-lot-id="{lot_ids[0]}"]')
        refuse.append(True)
        await row1.get_by_test_id("ctl-hammer").click()
        assert re.match(rf"^确认落槌？.*#{lot_ids[0]} {TITLES[0]} · ¥11\.00 · \d\d:\d\d$", dialogs[-1]), dialogs[-1]
        assert (await hall.anon.get(f"/api/lots/{lot_ids[0]}"))["status"] == "live"
        await expect(row1.get_by_test_id("room-status")).to_have_text("拍卖中")
        # The hammer on the other two, confirmed; the warned lot closes by itself.
        for lid in lot_ids[:2]:
            row = op.locator(f'[data-testid="room-row"][data-lot-id="{lid}"]')
            await row.get_by_test_id("ctl-hammer").click()
            await expect(row.get_by_test_id("room-status")).to_have_text(re.compile("^(已结束|已结算)$"))
            await expect(row.locator("button")).to_have_count(0)  # nothing left to do to it
        await expect(row3.get_by_test_id("room-status")).to_have_text(re.compile("^(已结束|已结算)$"))
        await expect(row3.get_by_test_id("room-price")).to_contain_text("流拍")
        await expect(watcher.get_by_test_id("lot-status")).to_have_text(re.compile("^(Closed|Settled)$"))
        await expect(watcher.get_by_test_id("result-headline")).to_have_text("Unsold")
        await expect(watcher.get_by_test_id("bid-button")).to_be_hidden()
        await watcher.close()
        assert len([d for d in dialogs if d.startswith("确认落槌")]) == 3, dialogs  # one cancelled
        assert len([d for d in dialogs if d.startswith("发出最后警告")]) == 1, dialogs
        await expect(a.get_by_test_id("result-mine")).to_contain_text("恭喜，您已拍得此拍品！")
        await expect(b.get_by_test_id("result-headline")).to_contain_text("Winner: you")

        # Publishing from the console is refused, in words, when a lot ends before the start;
        # a lot added there takes its deadline as minutes after the session opens.
        late = await hall.operator.post("/api/admin/sessions", {
            "title": "晚开专场", "deposit_amount": 0, "starts_at_ms": int(time.time() * 1000) + 3_600_000})
        await hall.operator.post(f"/api/admin/sessions/{late['id']}/lots", {
            "title": "提前截止的拍品", "start_price": 100, "increment": 10, "lot_deposit": 0,
            "ends_at_ms": int(time.time() * 1000) + 600_000})
        await op.get_by_test_id("f-l-session").fill(str(late["id"]))
        await op.get_by_test_id("f-l-title").fill("开拍后九十分钟截止")
        await op.get_by_test_id("l-minutes").fill("")
        await op.get_by_test_id("create-lot-form").get_by_role("button", name="创建").click()
        await expect(op.get_by_test_id("l-minutes-err")).to_have_text("必填")
        await op.get_by_test_id("l-minutes").fill("90")
        await op.get_by_test_id("create-lot-form").get_by_role("button", name="创建").click()
        await expect(op.get_by_test_id("create-lot-result")).to_contain_text("完成")
        added = (await hall.operator.get(f"/api/sessions/{late['id']}"))["lots"][-1]
        assert (await hall.operator.get(f"/api/admin/lots/{added['id']}"))["ends_after_start_s"] == 5400
        await op.get_by_test_id("f-p-session").fill(str(late["id"]))
        await op.get_by_test_id("publish-form").get_by_role("button", name="发布").click()
        await expect(op.get_by_test_id("publish-result")).to_have_text(re.compile(
            r"^以下拍品的截止时间早于开拍时间，请先设置更晚的截止时间： #\d+ 提前截止的拍品$"))
        assert (await hall.operator.get(f"/api/sessions/{late['id']}"))["status"] == "draft"

        # -- results.csv ---------------------------------------------------------------------
        await op.goto(f"{base}/ops/sessions/{sid}")
        await expect(a.get_by_test_id("result-mine")).to_have_attribute(  # order written
            "data-state", re.compile("^won_(unpaid|paid)$"), timeout=60_000)
        async with op.expect_download() as dl:
            await op.get_by_test_id("results-csv").click()
        data = Path(await (await dl.value).path()).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert [r["title"] for r in rows] == TITLES
        assert [r["result"] for r in rows] == ["sold", "sold", "unsold"]
        assert [r["hammer_yuan"] for r in rows] == ["11.00", "20.00", ""]
        assert [r["winner"] for r in rows] == [alice["username"], bob["username"], ""]
        assert rows[0]["premium_yuan"] == "1.10"

        # -- the winner's sale confirmation from /me ------------------------------------------
        await a.goto(base + "/me")
        link = a.locator('[data-testid="order-row"]').get_by_test_id("order-confirmation")
        await expect(link).to_have_count(1)
        await check_a11y(a, "me")
        await shot(a, "bo-me-confirmation-phone")
        async with a.expect_download() as dl:
            await link.click()
        text = pdf_text(Path(await (await dl.value).path()).read_bytes())
        assert "成交确认书" in text and TITLES[0] in text and "¥11.00" in text
        assert alice["username"] in text and "春季瓷器专场" in text

        # -- the audit log page: everything above, in order ---------------------------------
        await op.goto(base + "/ops/audit")
        await op.get_by_test_id("a-target").fill(f"lot:{lot_ids[0]}")
        await op.get_by_test_id("audit-apply").click()
        await expect(op.get_by_test_id("audit-row")).to_have_count(2)  # lot.create, lot.hammer
        await expect(op.get_by_test_id("audit-row").last).to_have_attribute("data-action", "lot.hammer")
        await op.get_by_test_id("a-target").fill(f"session:{sid}")
        await op.get_by_test_id("audit-apply").click()
        await expect(op.get_by_test_id("audit-row")).to_have_count(4)  # create, 2 reorders, publish
        await op.get_by_test_id("a-target").fill("")
        await op.get_by_test_id("a-action").fill("money")
        await op.get_by_test_id("audit-apply").click()
        await expect(op.get_by_test_id("audit-row").first).to_be_visible()
        await check_a11y(op, "audit log")
        await shot(op, "bo-audit-desktop")

        # -- bidders: find bob, ban him with a reason, unban, credit with a reason -----------
        await op.goto(base + "/ops/users")
        await op.get_by_test_id("users-q").fill(bob["username"])
        await op.get_by_test_id("users-apply").click()
        row = op.get_by_test_id("user-row")
        await expect(row).to_have_count(1)
        await row.get_by_test_id("user-toggle").click()
        await row.get_by_test_id("ban").click()
        await expect(row.locator("[id^=ban-reason-][id$=-err]")).to_have_text("必填")
        await row.locator("input[id^=ban-reason-]").fill("恶意抬价")
        await row.get_by_test_id("ban").click()
        row = op.get_by_test_id("user-row")
        await expect(row.get_by_test_id("user-status")).to_have_text("已封禁")
        await row.get_by_test_id("user-toggle").click()
        await expect(row.get_by_test_id("ban-reason")).to_have_text("已封禁: 恶意抬价")
        await b.goto(f"{base}/lots/{lot_ids[2]}")
        code, data = await bob_api.call("POST", f"/api/lots/{lot_ids[2]}/bids", {"amount": 3000, "ref": "x1"})
        assert code == 403 and data["code"] == "banned"
        await row.locator("input[id^=credit-amount-]").fill("50")
        await row.locator("input[id^=credit-reason-]").fill("运费补偿")
        await row.get_by_test_id("credit").click()
        await expect(row.get_by_test_id("user-result")).to_contain_text("已充值，余额")
        await row.get_by_test_id("user-toggle").click()  # closed and opened again: the ledger now has it
        await row.get_by_test_id("user-toggle").click()
        await expect(row.get_by_test_id("user-ledger").locator("tbody tr").first).to_contain_text("运营充值 · 运费补偿")
        await check_a11y(op, "bidders")
        await shot(op, "bo-users-desktop")
        await row.locator("input[id^=ban-reason-]").fill("申诉通过")
        await row.get_by_test_id("unban").click()
        await expect(op.get_by_test_id("user-row").get_by_test_id("user-status")).to_have_text("正常")

        # -- orders, filtered by session, with the confirmation as an operator ----------------
        await op.goto(f"{base}/ops/orders?session_id={sid}")
        await expect(op.get_by_test_id("order-row")).to_have_count(2)
        await op.get_by_test_id("orders-status").select_option("forfeited")
        await op.get_by_test_id("orders-apply").click()
        await expect(op.get_by_test_id("order-row")).to_have_count(0)
        await expect(op.get_by_test_id("no-orders")).to_be_visible()
        await op.get_by_test_id("orders-status").select_option("")
        await op.get_by_test_id("orders-apply").click()
        await expect(op.get_by_test_id("order-row")).to_have_count(2)
        await expect(op.get_by_test_id("order-pdf")).to_have_count(2)
        await check_a11y(op, "orders")
        await shot(op, "bo-orders-desktop")
        # One order's page: lot with its photo, winner, money, status, audit trail, the PDF.
        await op.locator('[data-testid="order-row"]').last.get_by_test_id("order-open").click()
        await expect(op).to_have_url(re.compile(r"/ops/orders/\d+$"))
        order_id = int(op.url.rsplit("/", 1)[1])
        await expect(op.get_by_test_id("order-title")).to_have_text(f"订单 #{order_id}")
        await expect(op.get_by_test_id("order-lot-link")).to_have_text(f"#{lot_ids[0]} {TITLES[0]}")
        await expect(op.get_by_test_id("order-photo")).to_be_visible()
        await expect(op.get_by_test_id("order-session")).to_contain_text("春季瓷器专场")
        await expect(op.get_by_test_id("order-winner")).to_have_text(alice["username"])
        await expect(op.get_by_test_id("order-hammer")).to_have_text("¥11.00")
        await expect(op.get_by_test_id("order-premium")).to_have_text("¥1.10")
        # The session deposit (¥100) covers hammer and premium: credited, nothing due, paid.
        await expect(op.get_by_test_id("order-deposit")).to_have_text("¥12.10")
        await expect(op.get_by_test_id("order-due")).to_have_text("¥0.00")
        await expect(op.get_by_test_id("order-status")).to_have_text("已付款")
        await expect(op.get_by_test_id("order-deadline")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d "))
        await expect(op.get_by_test_id("order-payments-none")).to_have_text("没有付款记录")
        trail = op.get_by_test_id("order-audit-row")
        await expect(trail.first).to_have_attribute("data-action", "lot.create")
        await expect(op.locator('[data-testid="order-audit-row"][data-action="lot.hammer"]')).to_have_count(1)
        async with op.expect_download() as dl:
            await op.get_by_test_id("order-pdf").click()
        assert TITLES[0] in pdf_text(Path(await (await dl.value).path()).read_bytes())
        await check_a11y(op, "order")
        await shot(op, "bo-order-desktop")
        await op.get_by_test_id("order-lot-audit").click()  # the lot's whole audit log, filtered
        await expect(op.get_by_test_id("a-target")).to_have_value(f"lot:{lot_ids[0]}")
        await expect(op.get_by_test_id("audit-row")).to_have_count(2)
        await op.go_back()
        await op.get_by_test_id("order-winner").click()  # to the bidder, opened
        await expect(op.get_by_test_id("user-row")).to_have_count(1)
        await expect(op.get_by_test_id("user-detail")).to_be_visible()
        await expect(op.get_by_test_id("user-orders").locator("tbody tr")).to_have_count(1)

        # -- jobs of the session: the settlements and deposits, found by session -------------
        await op.goto(f"{base}/ops/jobs")
        await op.get_by_test_id("jobs-session_id").fill(str(sid))
        await op.get_by_test_id("jobs-apply").click()
        await expect(op.locator('[data-testid="job-row"][data-kind="settle_lot"]')).to_have_count(3)
        settled = op.locator('[data-testid="job-row"][data-kind="settle_lot"]').first
        await expect(settled.get_by_test_id("job-wait")).to_have_text(re.compile(r"^\d+ ms$"))  # queued -> started
        await expect(settled.get_by_test_id("job-state")).to_have_text("成功")
        await check_a11y(op, "jobs")
        await shot(op, "bo-jobs-desktop")

        # -- phone and English layouts of the operator pages ----------------------------------
        ctx_op_phone = await browser.new_context(**PHONE)
        await log_in(ctx_op_phone, base, hall.operator.token, "en")
        p = await ctx_op_phone.new_page()
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        for path, name, marker in ((f"/ops/sessions/{sid}", "bo-session-phone-en", "Download results CSV"),
                                   ("/ops/sessions", "bo-sessions-phone-en", "New session"),
                                   ("/ops/audit", "bo-audit-phone-en", "Audit log"),
                                   ("/ops/users", "bo-users-phone-en", "Bidders"),
                                   (f"/ops/orders?session_id={sid}", "bo-orders-phone-en", "Orders"),
                                   (f"/ops/jobs?session_id={sid}", "bo-jobs-phone-en", "Jobs"),
                                   (f"/ops/orders/{order_id}", "bo-order-phone-en", "Hammer price")):
            await p.goto(base + path)
            await expect(p.get_by_text(marker).locator("visible=true").first).to_be_visible()
            await expect(p.get_by_test_id("nav-ops").locator("a")).to_have_count(6)
            await expect(p.get_by_test_id("bo-nav-bo_live")).to_be_hidden()  # the header has them
            await fits_width(p, name)
            await check_a11y(p, name)
            await shot(p, name)
        # The same pages at tablet width.
        t_ctx = await browser.new_context(**TABLET)
        await log_in(t_ctx, base, hall.operator.token, "zh")
        tp = await t_ctx.new_page()
        for path in (f"/ops/sessions/{sid}", "/ops/sessions", "/ops/audit", "/ops/users",
                     f"/ops/orders?session_id={sid}", f"/ops/jobs?session_id={sid}", f"/ops/orders/{order_id}"):
            await tp.goto(base + path)
            await expect(tp.get_by_test_id("nav-ops").locator("a")).to_have_count(6)
            await fits_width(tp, f"tablet {path}")

        # -- a bidder never sees operator forms ------------------------------------------------
        await b.goto(base + "/ops")
        await expect(b.get_by_test_id("ops-message")).to_have_text("Operator account required")
        await expect(b.get_by_test_id("create-session-form")).to_have_count(0)
        await b.goto(base + "/ops/sessions")
        await expect(b.get_by_test_id("error")).to_have_text("Operator account required")
        assert errors == []
        await browser.close()
