"""The pages in a real browser: two bidders in a live room, deposits, bidding,
soft close, pause/resume, a dropped network with catch-up, and the close."""
from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

from auction import receipts
from conftest import Api, Socket

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]

expect.set_options(timeout=20_000)


def init_script(token: str | None, lang: str = "zh") -> str:
    tok = f"localStorage.setItem('token', {token!r});" if token else ""
    return f"{tok} if (!localStorage.getItem('lang')) localStorage.setItem('lang', {lang!r});"


async def log_in(ctx, base: str, token: str, lang: str = "zh") -> None:
    """What logging in leaves in a browser: the token in localStorage (for the
    pages' HTTP calls) and the HttpOnly `hall_token` cookie (their sockets
    carry no token in the URL)."""
    await ctx.add_init_script(init_script(token, lang))
    await ctx.add_cookies([{"name": "hall_token", "value": token, "url": base,
                            "httpOnly": True, "sameSite": "Lax"}])


async def shot(page: Page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


async def pay_deposit(stack, hall, api: Api, lot_id: int, scope: str) -> dict:
    """A deposit paid from the balance: the task's result as the owner's socket gets it."""
    sock = await Socket.connect(stack.ws_url, api.token)
    try:
        return await hall.pay_deposit(api, sock, lot_id, scope=scope)
    finally:
        await sock.close()


async def test_pages_two_bidders(stack, hall):
    base = stack.base
    alice_api, alice = await hall.bidder(prefix="alice")
    bob_api, bob = await hall.bidder(prefix="bob")
    carol_api, carol = await hall.bidder(prefix="carol")
    # Every bid lands inside the extension window, so the first one visibly
    # pushes the deadline out; the operator hammers the lot at the end.
    session, (lot,) = await hall.live_lots(
        1, ends_in_s=40, extend_window_s=40, extend_by_s=90, start_price=10_000, increment=500,
        title="青花瓷瓶", description="清代青花缠枝莲纹瓶，高 32 厘米。",
        images=["/static/img/placeholder.svg"])
    lot_id = lot["id"]
    original_deadline = lot["deadline_ms"]
    # carol bids over plain HTTP while alice is offline; her deposit is paid the same way.
    task = await pay_deposit(stack, hall, carol_api, lot_id, "lot")
    assert task["state"] == "SUCCESS", task

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        phone = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1,
                 "is_mobile": True, "has_touch": True}
        ctx_a = await browser.new_context(**phone)
        await log_in(ctx_a, stack.base, alice_api.token, "zh")
        ctx_b = await browser.new_context(viewport={"width": 1200, "height": 900})
        await log_in(ctx_b, stack.base, bob_api.token, "en")
        a = await ctx_a.new_page()
        b = await ctx_b.new_page()
        errors: list[str] = []
        for p in (a, b):
            p.on("pageerror", lambda exc: errors.append(str(exc)))

        # -- the way in: session list -> session -> lot ------------------------
        await a.goto(base + "/")
        link = a.get_by_test_id("session-link").filter(has_text=session["title"])
        await expect(link).to_be_visible()
        await shot(a, "index")
        await link.click()
        await expect(a.get_by_test_id("session-title")).to_contain_text(session["title"])
        await expect(a.get_by_test_id("lot-link")).to_have_count(1)
        await shot(a, "session")
        await a.get_by_test_id("lot-link").click()
        await expect(a).to_have_url(f"{base}/lots/{lot_id}")
        await b.goto(f"{base}/lots/{lot_id}")

        for p in (a, b):
            await expect(p.get_by_test_id("conn")).to_have_attribute("data-state", "online")
            await expect(p.get_by_test_id("lot-title")).to_have_text("青花瓷瓶")
            await expect(p.get_by_test_id("next-min-bid")).to_have_text("¥100.00")
        await expect(a.get_by_test_id("price")).to_have_text("暂无出价")
        await expect(b.get_by_test_id("price")).to_have_text("No bids yet")
        await expect(a.get_by_test_id("lot-status")).to_have_text("拍卖中")
        await expect(b.get_by_test_id("lot-status")).to_have_text("Live")

        # Before the deposit it is the one thing to do: its form stands where
        # the bid buttons will be, right under the price and the countdown.
        await expect(a.get_by_test_id("deposit-title")).to_have_text("缴纳保证金后即可出价")
        await expect(b.get_by_test_id("deposit-title")).to_have_text("Pay the deposit to start bidding")
        await expect(a.get_by_test_id("bid-button")).to_be_hidden()
        # Under a minute left: the countdown is red and says so.
        await expect(a.get_by_test_id("countdown")).to_have_attribute("data-urgent", "true")
        await expect(a.get_by_test_id("countdown-label")).to_have_text("最后一分钟！")
        await shot(a, "lot-deposit-first-phone")

        # -- deposits, paid through the page; the result arrives on the socket --
        await expect(a.get_by_test_id("deposit-balance")).to_have_text("¥100,000.00")
        await a.get_by_test_id("deposit-scope-session").check()
        await a.get_by_test_id("deposit-pay").click()
        await expect(a.get_by_test_id("deposit-message")).to_have_text("保证金已生效")
        await expect(a.get_by_test_id("deposit-paid")).to_be_visible()
        await b.get_by_test_id("deposit-scope-lot").check()
        await b.get_by_test_id("deposit-pay").click()
        await expect(b.get_by_test_id("deposit-message")).to_have_text("Deposit in force")
        await expect(b.get_by_test_id("deposit-paid")).to_have_attribute("data-scope", "lot")
        assert (await alice_api.get("/api/me"))["balance"] == 10_000_000 - 10_000
        await shot(a, "lot-deposit-paid")

        # -- bidding against each other ------------------------------------------
        # Two clicks in one task: the second is ignored (button disabled until answered).
        await a.evaluate("""() => { const b = document.querySelector('[data-testid="bid-button"]');
                                   b.click(); b.click(); }""")
        await expect(a.get_by_test_id("my-position")).to_have_text("您领先")
        await expect(a.get_by_test_id("leader")).to_have_text("我")
        await expect(b.get_by_test_id("price")).to_have_text("¥100.00")
        await expect(b.get_by_test_id("leader")).to_have_text(re.compile(r"^a.*\*"))
        await expect(b.get_by_test_id("bid-row")).to_have_count(1)
        # The late bid moved the deadline: both see it where the deadline is,
        # and the viewer's one notice line says why.
        for p in (a, b):
            await expect(p.get_by_test_id("deadline")).to_have_attribute("data-extended", "true")
        await expect(a.get_by_test_id("deadline")).to_contain_text("已延时至")
        await expect(b.get_by_test_id("deadline")).to_contain_text("Extended to")
        await expect(b.get_by_test_id("room-notice")).to_contain_text("A late bid extended the auction")
        new_deadline = int(await b.get_by_test_id("deadline").get_attribute("data-deadline-ms"))
        assert new_deadline >= original_deadline + 40_000
        left = int(await b.get_by_test_id("countdown").get_attribute("data-left-ms"))
        assert 60_000 < left <= 90_000, left
        await expect(b.get_by_test_id("countdown")).to_have_attribute("data-urgent", "false")

        await b.get_by_test_id("bid-button").click()
        await expect(b.get_by_test_id("room-notice")).to_have_text("Bid accepted #2")
        await expect(b.get_by_test_id("room-notice")).to_have_attribute("data-kind", "accepted")
        # The bid's signed receipt is kept in the browser, ready to download.
        await expect(b.get_by_test_id("receipts-download")).to_have_text("Download my bid receipts (1)")
        async with b.expect_download() as download:
            await b.get_by_test_id("receipts-download").click()
        (kept,) = json.loads(Path(await (await download.value).path()).read_text())
        assert (kept["seq"], kept["amount"], kept["lot_id"]) == (2, 10_500, lot_id)
        published = {k["kid"]: base64.b64decode(k["public_key"])
                     for k in (await hall.anon.get("/api/keys"))["keys"]}
        assert receipts.verify(kept, published) == (True, "signature valid")
        await expect(b.get_by_test_id("leader")).to_have_text("you")
        await expect(a.get_by_test_id("price")).to_have_text("¥105.00")
        await expect(a.get_by_test_id("leader")).to_have_text(re.compile(r"^b.*\*"))
        await expect(a.get_by_test_id("room-notice")).to_have_text("您的出价已被超越，当前价 ¥105.00")
        await expect(a.get_by_test_id("my-position")).to_have_text("您已被超越")
        # Quick bids: the next minimum, +1 and +5 steps of the increment.
        await expect(a.get_by_test_id("bid-button")).to_have_text("出价 ¥110.00")
        await expect(a.get_by_test_id("quick-bid-1")).to_have_text("+1 档 ¥115.00")
        await expect(a.get_by_test_id("quick-bid-5")).to_have_text("+5 档 ¥135.00")
        await expect(a.get_by_test_id("next-min-bid")).to_have_text("¥110.00")

        # Rejections, each with its own message.
        # The leader has nothing to press: no "already the highest bidder" in vain.
        await expect(b.get_by_test_id("bid-button")).to_be_disabled()
        await expect(b.get_by_test_id("bid-button")).to_have_text("You are leading: no need to bid")
        await expect(b.get_by_test_id("quick-bid-1")).to_be_disabled()
        await a.get_by_test_id("bid-amount").fill("112")
        await a.get_by_test_id("bid-amount").press("Enter")  # Enter bids the amount typed
        await expect(a.get_by_test_id("room-notice")).to_have_text("金额无效（须为加价幅度的整数倍）")
        await a.get_by_test_id("bid-amount").fill("100")
        await a.get_by_test_id("bid-amount-button").click()
        await expect(a.get_by_test_id("room-notice")).to_have_text("出价低于最低加价")
        # Far above the minimum (here 1,000 increments): asked to confirm; cancel places nothing.
        await a.get_by_test_id("bid-amount").fill("5110")
        await a.get_by_test_id("bid-amount").press("Enter")
        confirm = a.get_by_test_id("bid-confirm")
        await expect(confirm).to_be_visible()
        await expect(a.get_by_test_id("bid-confirm-text")).to_contain_text("¥5,110.00")
        await expect(a.get_by_test_id("bid-confirm-text")).to_contain_text("1000")
        await shot(a, "lot-confirm-phone")
        await a.get_by_test_id("bid-confirm-no").click()
        await expect(confirm).to_be_hidden()
        await a.get_by_test_id("bid-amount").fill("120")
        await a.get_by_test_id("bid-amount-button").click()
        await expect(a.get_by_test_id("room-notice")).to_have_text("出价成功 #3")
        assert (await hall.anon.get(f"/api/lots/{lot_id}"))["price"] == 12_000  # the 5,110 was never placed
        await expect(b.get_by_test_id("price")).to_have_text("¥120.00")
        for p in (a, b):
            await expect(p.get_by_test_id("bid-row")).to_have_count(3)
        await shot(a, "lot-bidding-phone")
        await shot(b, "lot-bidding-desktop-en")

        # -- the operator pauses and resumes --------------------------------------
        await hall.operator.post(f"/api/admin/lots/{lot_id}/pause")
        await expect(a.get_by_test_id("lot-status")).to_have_text("已暂停")
        await expect(b.get_by_test_id("lot-status")).to_have_text("Paused")
        await expect(a.get_by_test_id("room-notice")).to_have_text("拍卖已暂停")
        await expect(b.get_by_test_id("room-notice")).to_have_text("The auction is paused")
        # Paused: no bid button to press in vain, and the countdown says it is stopped.
        await expect(b.get_by_test_id("bid-button")).to_be_disabled()
        await expect(b.get_by_test_id("bid-button")).to_have_text("Paused: bidding resumes with the lot")
        await expect(b.get_by_test_id("countdown-label")).to_have_text("Time left (paused)")
        frozen = await b.get_by_test_id("countdown").text_content()
        await expect(b.get_by_test_id("countdown")).to_have_attribute("data-urgent", "false")
        assert await b.get_by_test_id("countdown").text_content() == frozen  # stopped
        await shot(b, "lot-paused")
        await hall.operator.post(f"/api/admin/lots/{lot_id}/resume")
        await expect(a.get_by_test_id("lot-status")).to_have_text("拍卖中")
        await expect(b.get_by_test_id("room-notice")).to_have_text("The auction has resumed")
        await expect(b.get_by_test_id("bid-button")).to_be_enabled()
        await hall.operator.post(f"/api/admin/lots/{lot_id}/fair-warning")
        await expect(a.get_by_test_id("room-notice")).to_have_text("最后警告！即将落槌")
        await expect(a.get_by_test_id("lot-status")).to_have_text("最后警告")

        # -- alice loses the network; bob and carol keep bidding --------------------
        await ctx_a.set_offline(True)
        await expect(a.get_by_test_id("conn")).to_have_attribute("data-state", "offline")
        await expect(a.get_by_test_id("conn")).to_have_text("连接断开，正在重连…")
        price = 12_000
        for who in (bob_api, carol_api, bob_api, carol_api):
            price += 500
            ans = await who.post(f"/api/lots/{lot_id}/bids",
                                 {"amount": price, "ref": uuid.uuid4().hex})
            assert ans["accepted"] is True
        await expect(b.get_by_test_id("bid-row")).to_have_count(7)
        await expect(b.get_by_test_id("price")).to_have_text("¥140.00")
        assert await a.get_by_test_id("bid-row").count() == 3
        await shot(a, "lot-offline")
        await ctx_a.set_offline(False)
        await expect(a.get_by_test_id("conn")).to_have_attribute("data-state", "online")
        await expect(a.get_by_test_id("bid-row")).to_have_count(7)  # every missed bid, none twice
        seqs = [int(s) for s in await a.get_by_test_id("bid-row").evaluate_all(
            "rows => rows.map(r => r.dataset.seq)")]
        assert seqs == [7, 6, 5, 4, 3, 2, 1]
        await expect(a.get_by_test_id("price")).to_have_text("¥140.00")
        await expect(a.get_by_test_id("leader")).to_have_text(re.compile(r"^c.*\*"))
        await expect(a.get_by_test_id("next-min-bid")).to_have_text("¥145.00")

        # alice takes the lead again after reconnecting.
        await a.get_by_test_id("bid-button").click()
        await expect(a.get_by_test_id("room-notice")).to_have_text("出价成功 #8")
        await expect(a.get_by_test_id("my-position")).to_have_text("您领先")
        await expect(b.get_by_test_id("price")).to_have_text("¥145.00")
        await expect(b.get_by_test_id("bid-row")).to_have_count(8)

        # -- the hammer falls ---------------------------------------------------------
        await hall.operator.post(f"/api/admin/lots/{lot_id}/hammer")
        await expect(a.get_by_test_id("lot-status")).to_have_text(re.compile("^(已结束|已结算)$"))
        await expect(b.get_by_test_id("lot-status")).to_have_text(re.compile("^(Closed|Settled)$"))
        await expect(a.get_by_test_id("result-headline")).to_have_text(
            "已成交 · 成交价 ¥145.00 · 买受人: 我")
        await expect(b.get_by_test_id("result-headline")).to_have_text(
            re.compile(r"^Sold · Hammer price ¥145\.00 · Winner: a\*{3}\S+$"))
        # The bid controls are gone (not a disabled button left behind); the
        # result says what it means for each: alice pays, bob's deposit goes back.
        for p in (a, b):
            await expect(p.get_by_test_id("bid-button")).to_be_hidden()
            await expect(p.get_by_test_id("room-notice")).to_be_hidden()  # no stale "accepted" or "extended"
            await expect(p.get_by_test_id("my-position")).to_be_hidden()
        await expect(b.get_by_test_id("result-mine")).to_have_attribute("data-state", "lost")
        await expect(b.get_by_test_id("result-mine")).to_contain_text("You did not win this lot.")
        await expect(b.get_by_test_id("refund-state")).to_contain_text("¥50.00")
        # settlement pushes `won` once the order exists: pay now, with the amount due
        await expect(a.get_by_test_id("result-mine")).to_have_attribute("data-state", "won_unpaid",
                                                                         timeout=60_000)
        await expect(a.get_by_test_id("result-mine")).to_contain_text("应付 ¥45.00")  # ¥145 less the ¥100 session deposit
        await shot(a, "lot-closed-phone")
        await shot(b, "lot-closed-desktop-en")
        # A reload says the same: the result is read back from /api/me.
        for p in (a, b):
            await p.reload()
        await expect(a.get_by_test_id("result-mine")).to_have_attribute("data-state", "won_unpaid")
        await expect(a.get_by_test_id("won-pay-link")).to_be_visible()
        await expect(b.get_by_test_id("result-mine")).to_have_attribute("data-state", "lost")
        await expect(b.get_by_test_id("refund-state")).to_have_attribute(
            "data-status", re.compile("^(soon|pending|done)$"))
        await expect(b.get_by_test_id("bid-button")).to_be_hidden()

        # -- me: pay the order the room links to ------------------------------------------
        await a.get_by_test_id("won-pay-link").click()
        await expect(a).to_have_url(re.compile(r"/me#order-\d+$"))
        await expect(a.get_by_test_id("order-row")).to_have_count(1)
        row = a.get_by_test_id("order-row")
        await expect(row).to_have_attribute("data-status", "unpaid")
        await expect(a.get_by_test_id("deposit-row")).to_have_count(1)
        await shot(a, "me")
        await a.get_by_test_id("order-pay").click()
        await expect(a.get_by_test_id("order-status")).to_have_text("已付款")

        # -- login page, and the operator dashboard ------------------------------------
        anon = await browser.new_context(viewport={"width": 390, "height": 844})
        lp = await anon.new_page()
        await lp.goto(f"{base}/login?next=/me")
        await lp.get_by_test_id("login-username").fill(bob["username"])
        await lp.get_by_test_id("login-password").fill("wrong-password")
        await lp.get_by_test_id("login-submit").click()
        await expect(lp.get_by_test_id("login-error")).not_to_be_empty()
        await shot(lp, "login")
        await lp.get_by_test_id("login-password").fill("secret123")
        await lp.get_by_test_id("login-submit").click()
        await expect(lp).to_have_url(f"{base}/me")
        await expect(lp.get_by_test_id("balance")).to_be_visible()

        ops_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        await log_in(ops_ctx, stack.base, hall.operator.token, "zh")
        op = await ops_ctx.new_page()
        # A second live lot so the dashboard has something to control.
        _, (lot2,) = await hall.live_lots(1, ends_in_s=120, title="紫砂壶", reserve_price=50_000)
        await op.goto(base + "/ops")
        row2 = op.locator(f'[data-testid="room-row"][data-lot-id="{lot2["id"]}"]')
        await expect(row2.get_by_test_id("room-status")).to_have_text("拍卖中")
        await row2.get_by_test_id("ctl-pause").click()
        await expect(row2.get_by_test_id("room-status")).to_have_text("已暂停")
        await row2.get_by_test_id("ctl-resume").click()
        await expect(row2.get_by_test_id("room-status")).to_have_text("拍卖中")
        await pay_deposit(stack, hall, bob_api, lot2['id'], "session")
        # Below the hidden reserve the room says so, beside the price (never the reserve itself).
        first = (await hall.anon.get(f"/api/lots/{lot2['id']}"))["next_min_bid"]
        ans = await bob_api.post(f"/api/lots/{lot2['id']}/bids", {"amount": first, "ref": uuid.uuid4().hex})
        assert ans["accepted"] is True
        await b.goto(f"{base}/lots/{lot2['id']}")
        await expect(b.get_by_test_id("reserve-state")).to_have_text("Reserve not met")
        await expect(b.get_by_test_id("my-position")).to_have_text("You are leading")
        await shot(b, "lot-reserve-not-met-desktop-en")
        await shot(op, "ops", full_page=False)  # the screen, not every room of the stack

        assert not errors, errors
        await browser.close()


async def test_ops_page_live_overview_and_chart(stack, hall):
    """The operator dashboard over the socket: the overview is pushed (no
    polling), the room's figures follow a new connection and new bids, and the
    lot's price chart gains a point per bid."""
    from conftest import Socket
    base = stack.base
    dora_api, _ = await hall.bidder(prefix="dora")
    emil_api, _ = await hall.bidder(prefix="emil")
    _, (lot,) = await hall.live_lots(1, ends_in_s=300, start_price=20_000, increment=1_000,
                                     title="翡翠手镯")
    lid = lot["id"]
    for who in (dora_api, emil_api):
        task = await pay_deposit(stack, hall, who, lid, "lot")
        assert task["state"] == "SUCCESS", task

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        await log_in(ctx, stack.base, hall.operator.token, "zh")
        op = await ctx.new_page()
        errors: list[str] = []
        polls: list[str] = []
        op.on("pageerror", lambda exc: errors.append(str(exc)))
        op.on("request", lambda req: polls.append(req.url) if "/api/admin/overview" in req.url else None)
        await op.goto(base + "/ops")
        await expect(op.get_by_test_id("conn")).to_have_attribute("data-state", "online")

        row = op.locator(f'[data-testid="room-row"][data-lot-id="{lid}"]')
        chart = op.locator(f'[data-testid="price-chart"][data-lot-id="{lid}"]')
        line = chart.get_by_test_id("chart-line")
        await expect(row.get_by_test_id("room-status")).to_have_text("拍卖中")
        await expect(line).to_have_attribute("data-points", "0")
        await expect(op.get_by_test_id("workers-online")).to_have_text(re.compile(r"^[1-9]\d*$"))
        await expect(op.get_by_test_id("task-rate")).to_have_text(re.compile(r"^\d+\.\d 个/秒$"))
        await expect(op.get_by_test_id("queues")).to_contain_text("=")
        # The dashboard's own socket is in the room (to draw the chart) but an
        # operator is not a bidder. live_lots' watcher leaves within a report.
        await expect(row.get_by_test_id("room-connections")).to_have_text("1")
        await expect(row.get_by_test_id("room-bidders")).to_have_text("0")
        stamp = await op.get_by_test_id("overview-time").get_attribute("data-server-time-ms")

        # A bidder connects: the pushed overview shows it, no reload.
        sock = await Socket.connect(stack.ws_url, dora_api.token)
        assert (await sock.join(lid))["type"] == "snapshot"
        await expect(row.get_by_test_id("room-connections")).to_have_text("2")
        await expect(row.get_by_test_id("room-bidders")).to_have_text("1")
        await expect(op.get_by_test_id("overview-time")).not_to_have_attribute(
            "data-server-time-ms", stamp)

        # Bids: the chart gains a point each, the row's price follows.
        accepted = await sock.bid(lid, 20_000)
        assert accepted["type"] == "accepted", accepted
        await expect(line).to_have_attribute("data-points", "1")
        await expect(chart.get_by_test_id("chart-price")).to_have_text("¥200.00")
        await expect(row.get_by_test_id("room-price")).to_have_text("¥200.00")
        one = await line.get_attribute("points")
        ans = await emil_api.post(f"/api/lots/{lid}/bids", {"amount": 21_000, "ref": uuid.uuid4().hex})
        assert ans["accepted"] is True
        await expect(line).to_have_attribute("data-points", "2")
        await expect(chart.get_by_test_id("chart-price")).to_have_text("¥210.00")
        await expect(row.get_by_test_id("room-price")).to_have_text("¥210.00")
        await expect(row.get_by_test_id("room-bids")).to_have_text("2")
        two = await line.get_attribute("points")
        assert len(one.split()) == 1 and len(two.split()) == 2, (one, two)
        # The later, higher bid is further right and higher up (smaller y).
        (x1, y1), (x2, y2) = (map(float, p.split(",")) for p in two.split())
        assert x2 >= x1 and y2 < y1
        # A later pushed overview agrees with the events (never rolls the price back).
        stamp = await op.get_by_test_id("overview-time").get_attribute("data-server-time-ms")
        await expect(op.get_by_test_id("overview-time")).not_to_have_attribute(
            "data-server-time-ms", stamp)
        await expect(row.get_by_test_id("room-price")).to_have_text("¥210.00")
        await expect(row.get_by_test_id("room-bids")).to_have_text("2")
        # A few more bids for the screenshot: one point each.
        price = 21_000
        for i in range(4):
            price += 1_000
            if i % 2 == 0:
                assert (await sock.bid(lid, price))["type"] == "accepted"
            else:
                await emil_api.post(f"/api/lots/{lid}/bids", {"amount": price, "ref": uuid.uuid4().hex})
            await expect(line).to_have_attribute("data-points", str(3 + i))
        await expect(row.get_by_test_id("room-price")).to_have_text("¥250.00")
        await shot(op, "ops", full_page=False)  # the screen, not every room of the stack

        assert polls == [], f"the dashboard polled while its socket was up: {polls}"
        assert not errors, errors
        await sock.close()
        await browser.close()


async def test_pages_coupon_on_a_won_order(stack, hall):
    """An operator issues a coupon; the bidder watches the lot, wins it (the
    room shows the won notice), picks the coupon on /me, sees the discounted
    amount, pays, and the balance drops by exactly that."""
    import time
    base = stack.base
    fay_api, fay = await hall.bidder(balance=1_000_000, prefix="fay")
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, start_price=50_000, lot_deposit=5_000,
                                     title="端砚")
    lid = lot["id"]
    task = await pay_deposit(stack, hall, fay_api, lid, "lot")
    assert task["state"] == "SUCCESS", task
    coupon = await hall.operator.post(f"/api/admin/users/{fay['id']}/coupons", {
        "kind": "fixed", "value": 3_000, "min_spend": 50_000,
        "expires_at_ms": int(time.time() * 1000) + 3_600_000})
    ans = await fay_api.post(f"/api/lots/{lid}/bids", {"amount": 50_000, "ref": uuid.uuid4().hex})
    assert ans["accepted"] is True

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
        await log_in(ctx, stack.base, fay_api.token, "zh")
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # The room: watch the lot, then the hammer falls and the win is announced.
        await page.goto(f"{base}/lots/{lid}")
        await expect(page.get_by_test_id("conn")).to_have_attribute("data-state", "online")
        toggle = page.get_by_test_id("watch-toggle")
        await expect(toggle).to_have_attribute("data-watching", "false")
        await toggle.click()
        await expect(toggle).to_have_attribute("data-watching", "true")
        await expect(toggle).to_contain_text("已关注")
        assert [w["lot_id"] for w in (await fay_api.get("/api/me/watches"))["watches"]] == [lid]
        await hall.operator.post(f"/api/admin/lots/{lid}/hammer")
        won = page.get_by_test_id("result-mine")
        await expect(won).to_contain_text("恭喜，您已拍得此拍品")
        await expect(won).to_contain_text("¥450.00")
        # The lot's `closed` event can show the win before the `won` message
        # with the order has come: the order's id is there once it has.
        await expect(won).to_have_attribute("data-order-id", re.compile(r"^\d+$"))
        order_id = await won.get_attribute("data-order-id")

        # /me: the coupon is listed, picking it shows the discounted amount, pay.
        await won.get_by_test_id("won-pay-link").click()
        await expect(page).to_have_url(f"{base}/me#order-{order_id}")
        await expect(page.get_by_test_id("coupon-row")).to_have_count(1)
        await expect(page.get_by_test_id("coupon-row")).to_contain_text("立减 ¥30.00")
        row = page.locator(f'[data-testid="order-row"][data-id="{order_id}"]')
        await expect(row).to_have_attribute("data-status", "unpaid")
        balance = page.get_by_test_id("balance")
        await expect(balance).to_have_attribute("data-amount", str(1_000_000 - 5_000))
        to_pay = row.get_by_test_id("order-to-pay")
        await expect(to_pay).to_have_attribute("data-amount", "45000")
        await row.get_by_test_id("order-coupon").select_option(str(coupon["id"]))
        await expect(to_pay).to_have_attribute("data-amount", "42000")
        await expect(to_pay).to_contain_text("实付 ¥420.00")
        await shot(page, "me-coupon")
        await row.get_by_test_id("order-pay").click()
        paid = page.locator('[data-testid="order-row"][data-status="paid"]')
        await expect(paid).to_have_count(1)
        await expect(paid.get_by_test_id("order-status")).to_have_text("已付款")
        await expect(balance).to_have_attribute("data-amount", str(1_000_000 - 5_000 - 42_000))
        await expect(page.get_by_test_id("no-coupons")).to_be_visible()  # used up

        assert not errors, errors
        await browser.close()
