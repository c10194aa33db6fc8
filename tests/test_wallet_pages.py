"""The bidder's side in Chromium (issue 14): the wallet on /me (balance, top-up
by WeChat Pay with the balance rising live, the statement in words, deposits
with what happens to them, an order paid after a short balance was topped
up), the session and lot lists (photos, placeholders, price, time left,
pills on one line), the 404 page, and the login form's labels and errors.
axe-core (WCAG 2.1 AA) on every page; screenshots at 390x844 and desktop."""
from __future__ import annotations

import asyncio
import re
import time

import requests
from playwright.async_api import async_playwright, expect

from conftest import Api, Socket
from test_backoffice_pages import DESKTOP, PHONE, check_a11y, fits_width
from test_money import add_coupon, check_money, hammer
from test_pages import ARGS, CHROMIUM, log_in, shot

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
PHOTO = "/static/img/placeholder.svg"

expect.set_options(timeout=20_000)


async def won_lot(stack, hall, api: Api, sock: Socket, title: str, price: int, lot_deposit: int,
                  images: list[str]) -> dict:
    """This user wins one lot (lot deposit paid from the balance); its order."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=lot_deposit, start_price=price,
                                     title=title, images=images)
    assert (await hall.pay_deposit(api, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
    await sock.join(lot["id"])
    assert (await sock.bid(lot["id"], price))["type"] == "accepted"
    await hammer(hall, lot["id"])
    won = await sock.wait_for(lambda m: m.get("type") == "won", timeout=30)
    return won["order"]


async def test_wallet_top_up_by_qr_then_pay_the_order(stack, hall, wechat_sim):
    api, user = await hall.bidder(balance=1_000, prefix="wal")  # the lot deposit, nothing more
    sock = await Socket.connect(stack.ws_url, api.token)
    order = await won_lot(stack, hall, api, sock, "清乾隆粉彩花卉纹碗", 30_000, 1_000, [PHOTO])
    assert order["due"] == 29_000
    coupon = add_coupon(stack, user["id"], "fixed", 3_000)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(**DESKTOP)
        await log_in(ctx, stack.base, api.token, "zh")
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{stack.base}/me")
        balance = page.get_by_test_id("balance")
        await expect(balance).to_have_text("¥0.00")
        row = page.locator(f"[data-testid=order-row][data-id='{order['id']}']")
        await expect(row.get_by_test_id("order-lot")).to_have_text("清乾隆粉彩花卉纹碗")
        await expect(row.get_by_test_id("lot-photo")).to_be_visible()
        await expect(row.get_by_test_id("order-due")).to_have_text("¥290.00")
        await expect(row).to_contain_text("保证金抵扣")
        await row.get_by_test_id("order-coupon").select_option(str(coupon))
        await expect(row.get_by_test_id("order-to-pay")).to_have_attribute("data-amount", "26000")

        # Too little balance: said in words, with the amounts, and the top-up offered.
        await row.get_by_test_id("order-pay").click()
        await expect(row.get_by_test_id("order-short")).to_have_text(
            "余额不足：需支付 ¥260.00，当前余额 ¥0.00，还差 ¥260.00。")
        await expect(row.get_by_test_id("order-coupon")).to_have_value(str(coupon))  # kept
        await row.get_by_test_id("order-topup").click()
        amount = page.get_by_test_id("topup-amount")
        await expect(amount).to_have_value("260")
        await expect(amount).to_be_focused()

        # A bad amount is refused in words before anything is sent.
        await amount.fill("12.345")
        await page.get_by_test_id("topup-submit").click()
        await expect(page.get_by_test_id("topup-message")).to_have_text("请输入大于 0 的金额，最多两位小数")
        await expect(amount).to_have_attribute("aria-invalid", "true")
        await amount.fill("260")
        await page.get_by_test_id("topup-submit").click()
        qr = page.get_by_test_id("topup-box").get_by_test_id("wechat-qr")
        await expect(qr).to_be_visible()
        await expect(page.get_by_test_id("wechat-pay")).to_contain_text("¥260.00")
        await check_a11y(page, "me: top-up QR")
        await shot(page, "me-topup-qr-desktop")

        # The simulator pays the scanned code: the balance rises by itself.
        paid = await Api(wechat_sim.url).post("/sim/pay", {"code_url": await qr.get_attribute("data-code-url")})
        assert paid["status"] == 200
        await expect(balance).to_have_text("¥260.00")
        await expect(page.get_by_test_id("topup-message")).to_have_text("充值成功，到账 ¥260.00，当前余额 ¥260.00")
        await expect(qr).to_have_count(0)
        first = page.get_by_test_id("ledger-row").first
        await expect(first).to_have_attribute("data-kind", "topup")
        await expect(first.get_by_test_id("ledger-amount")).to_have_text("+¥260.00")

        # The coupon is still chosen after all that; pay by balance now.
        await expect(row.get_by_test_id("order-coupon")).to_have_value(str(coupon))
        await row.get_by_test_id("order-pay").click()
        await expect(page.locator(f"[data-testid=order-row][data-id='{order['id']}']")
                     .get_by_test_id("order-status")).to_have_text("已付款")
        await expect(balance).to_have_text("¥0.00")

        # The statement in words: what, which lot, signed amounts; no memo, no task id.
        rows = page.get_by_test_id("ledger-row")
        await expect(rows.first).to_have_attribute("data-kind", "order")
        await expect(rows.first.get_by_test_id("ledger-what")).to_have_text("支付货款 · 清乾隆粉彩花卉纹碗")
        await expect(rows.first.get_by_test_id("ledger-amount")).to_have_text("−¥260.00")
        statement = await page.get_by_test_id("statement").inner_text()
        assert "缴纳保证金 · 清乾隆粉彩花卉纹碗" in statement and "−¥10.00" in statement
        assert "平台入账" in statement and "+¥10.00" in statement
        assert not re.search(r"task|order \d|deposit, lot|¥-", statement), statement
        dep = page.get_by_test_id("deposit-row")
        await expect(dep.get_by_test_id("deposit-state")).to_have_text("已抵扣")
        await expect(dep.get_by_test_id("deposit-why")).to_have_text("已抵扣订单货款：清乾隆粉彩花卉纹碗")
        await check_a11y(page, "me: wallet after paying")
        await fits_width(page, "me desktop")
        await shot(page, "me-wallet-desktop")
        assert not errors, errors
        await ctx.close()
        await browser.close()
    check_money(stack, [user["id"]])
    await sock.close()


async def test_wallet_on_a_phone_tops_up_at_the_h5_cashier(stack, hall, wechat_sim):
    api, user = await hall.bidder(balance=0, prefix="ph")
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=0, deposit=5_000,
                                     title="民国铜胎掐丝珐琅香炉", images=[PHOTO])
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(**PHONE, user_agent=IPHONE_UA)
        await log_in(ctx, stack.base, api.token, "en")
        page = await ctx.new_page()
        await page.goto(f"{stack.base}/me")
        await expect(page.get_by_test_id("balance")).to_have_text("¥0.00")
        await expect(page.get_by_test_id("no-entries")).to_have_text("No money movements yet")
        await page.get_by_test_id("topup-quick").nth(1).click()  # ¥500
        await expect(page.get_by_test_id("topup-amount")).to_have_value("500")
        await page.get_by_test_id("topup-submit").click()
        link = page.get_by_test_id("wechat-h5-open")
        await expect(link).to_be_visible()
        await expect(page.get_by_test_id("wechat-pay")).to_contain_text("¥500.00")
        await check_a11y(page, "me phone: h5 top-up")
        await fits_width(page, "me phone")
        await shot(page, "me-topup-h5-phone")
        # The page reloaded before paying: the open top-up is still said.
        href = await link.get_attribute("href")
        await page.reload()
        await expect(page.get_by_test_id("topup-pending")).to_have_text(
            re.compile(r"^1 top-up\(s\) not paid yet, credited once paid: ¥500\.00 \("))
        # Paid at WeChat's cashier (simulated): the page hears it over its socket.
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, lambda: requests.post(
            href.split("?")[0], data={"redirect_url": f"{stack.base}/me"}, allow_redirects=False,
            timeout=10))
        assert answer.status_code == 302
        await expect(page.get_by_test_id("balance")).to_have_text("¥500.00")
        await expect(page.get_by_test_id("topup-message")).to_have_text("Top-up received: ¥500.00; balance now ¥500.00")
        await expect(page.get_by_test_id("topup-pending")).to_be_hidden()

        # A session deposit paid from the new balance: its state and what happens to it.
        await api.post(f"/api/lots/{lot['id']}/deposit", {"scope": "session", "method": "balance"})
        dep = page.get_by_test_id("deposit-row")
        await expect(dep.get_by_test_id("deposit-state")).to_have_text("In force")
        await expect(dep.get_by_test_id("deposit-why")).to_have_text(
            "Refunded the way you paid when the session ends; lots you win are paid from it first.")
        await expect(page.get_by_test_id("ledger-row").first.get_by_test_id("ledger-amount")).to_have_text("−¥50.00")
        await expect(page.get_by_test_id("ledger-row").first.get_by_test_id("ledger-what")).to_contain_text("Deposit paid · Session")
        await check_a11y(page, "me phone: wallet")
        await shot(page, "me-wallet-phone")
        await ctx.close()
        await browser.close()
    check_money(stack, [user["id"]])


async def test_lists_show_photos_prices_time_left_and_one_line_pills(stack, hall):
    op = hall.operator
    now = int(time.time() * 1000)
    session = await op.post("/api/admin/sessions", {"title": "春季精品瓷器杂项专场", "deposit_amount": 20_000})
    specs = [("清康熙五彩人物故事图棒槌瓶", [PHOTO]), ("无图拍品：竹雕笔筒", []),
             ("图片损坏的拍品：玉璧", ["/media/images/" + "0" * 32 + ".jpg"])]
    lots = []
    for i, (title, images) in enumerate(specs):
        lots.append(await op.post(f"/api/admin/sessions/{session['id']}/lots", {
            "title": title, "start_price": 100_000, "increment": 1_000, "lot_deposit": 0,
            "images": images, "ends_at_ms": now + (i + 1) * 3_600_000}))
    watcher = await Socket.connect(stack.ws_url)
    await op.post(f"/api/admin/sessions/{session['id']}/publish", {})
    for lot in lots:
        snap = await watcher.join(lot["id"])
        if snap.get("status") != "live":
            await watcher.wait_for(lambda m, lid=lot["id"]: m.get("type") == "lot_status"
                                   and m.get("lot_id") == lid and m.get("status") == "live")
    await watcher.close()
    bidder, _ = await hall.bidder(prefix="lst")
    bsock = await Socket.connect(stack.ws_url, bidder.token)
    assert (await hall.pay_deposit(bidder, bsock, lots[0]["id"], scope="session"))["state"] == "SUCCESS"
    await bsock.join(lots[0]["id"])
    assert (await bsock.bid(lots[0]["id"], 100_000))["type"] == "accepted"
    await bsock.close()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for name, opts, lang in (("phone", PHONE, "zh"), ("desktop", DESKTOP, "en")):
            ctx = await browser.new_context(**opts)
            await ctx.add_init_script(f"localStorage.setItem('lang', {lang!r});")
            page = await ctx.new_page()
            await page.goto(f"{stack.base}/")
            link = page.locator(f"[data-testid=session-link][data-id='{session['id']}']")
            await expect(link.get_by_test_id("lot-photo")).to_be_visible()
            await expect(link.get_by_test_id("session-status")).to_have_text("拍卖中" if lang == "zh" else "Live")
            await expect(link.get_by_test_id("session-when")).to_contain_text("剩余" if lang == "zh" else "Left")
            await check_a11y(page, f"index {name}")
            await fits_width(page, f"index {name}")
            await shot(page, f"list-sessions-{name}")
            await link.click()
            items = page.get_by_test_id("lot-link")
            await expect(items).to_have_count(3)
            await expect(items.nth(0).get_by_test_id("lot-photo")).to_be_visible()
            await expect(items.nth(0).get_by_test_id("lot-price")).to_have_text("¥1,000.00")
            await expect(items.nth(0)).to_contain_text("当前价" if lang == "zh" else "Current price")
            await expect(items.nth(1).get_by_test_id("photo-missing")).to_be_visible()
            await expect(items.nth(1)).to_contain_text("起拍价" if lang == "zh" else "Start price")
            await expect(items.nth(2).get_by_test_id("photo-missing")).to_be_visible()  # broken image
            await expect(items.nth(2).get_by_test_id("lot-when")).to_contain_text(
                re.compile(r"剩余 2小时(5\d|60)分" if lang == "zh" else r"Left 2h (5\d|60)m"))
            # Status pills stay on one line, however narrow the row.
            heights = await page.get_by_test_id("lot-status").evaluate_all(
                "els => els.map(e => [e.getBoundingClientRect().height, getComputedStyle(e).whiteSpace])")
            assert all(h < 24 and ws == "nowrap" for h, ws in heights), heights
            await check_a11y(page, f"session {name}")
            # (the photo strip scrolls sideways inside itself; the page does not)
            assert await page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            await shot(page, f"list-lots-{name}")
            await ctx.close()
        await browser.close()


async def test_unknown_paths_get_a_404_page_and_the_api_its_json(stack, hall):
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for name, opts in (("phone", PHONE), ("desktop", DESKTOP)):
            ctx = await browser.new_context(**opts)
            page = await ctx.new_page()
            response = await page.goto(f"{stack.base}/sessions/abc/nothing-here")
            assert response.status == 404
            await expect(page.get_by_test_id("not-found")).to_contain_text("页面不存在")
            await expect(page.get_by_test_id("nf-path")).to_have_text("/sessions/abc/nothing-here")
            await check_a11y(page, f"404 {name} zh")
            await shot(page, f"404-{name}")
            await page.get_by_test_id("lang-switch").click()
            await expect(page.get_by_test_id("not-found")).to_contain_text("Page not found")
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await check_a11y(page, f"404 {name} en")
            await shot(page, f"404-{name}-en")
            await page.get_by_test_id("nf-home").click()
            await expect(page).to_have_url(f"{stack.base}/")
            await ctx.close()
        await browser.close()
    # Not a browser page: JSON, in the API's words.
    code, body = await hall.anon.call("GET", "/no/such/page")
    assert code == 404 and body["code"] == "not_found"
    code, body = await hall.anon.call("POST", "/nothing", {})
    assert code == 404 and body["code"] == "not_found"
    code, body = await hall.anon.call("GET", "/api/nothing")
    assert code == 404 and body["code"] == "not_found"


async def test_login_labels_and_the_servers_own_words(stack, hall):
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(**PHONE)
        page = await ctx.new_page()
        await page.goto(f"{stack.base}/login?mode=register")
        await page.get_by_label("用户名").fill("newcomer_" + str(int(time.time())))
        await page.get_by_label("密码").fill("123")
        await page.get_by_test_id("login-submit").click()
        # The server's own words, in the page's language, under the field they concern.
        await expect(page.get_by_test_id("login-password-error")).to_have_text("密码须为 6–128 个字符")
        await expect(page.get_by_test_id("login-error")).to_be_empty()
        await expect(page.get_by_test_id("login-password")).to_have_attribute("aria-invalid", "true")
        await check_a11y(page, "register with an error")
        await shot(page, "register-error-phone")
        await page.get_by_test_id("login-toggle").click()
        await page.get_by_label("用户名").fill("nobody_here")
        await page.get_by_label("密码").fill("wrong-password")
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误")
        await check_a11y(page, "login with an error")
        await ctx.close()
        await browser.close()


async def test_room_for_an_anonymous_visitor_and_what_screen_readers_hear(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=100, deposit=100,
                                     title="清代黄花梨官帽椅", images=[PHOTO])
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(**PHONE)
        page = await ctx.new_page()
        await page.goto(f"{stack.base}/lots/{lot['id']}")
        await expect(page.get_by_test_id("conn")).to_have_attribute("data-state", "online")
        # A way in, not a disabled button.
        login = page.get_by_test_id("bid-login")
        await expect(login).to_be_visible()
        await expect(login).to_have_text("登录后参与竞拍")
        await expect(login).to_have_attribute("href", f"/login?next=%2Flots%2F{lot['id']}")
        await expect(page.get_by_test_id("bid-button")).to_be_hidden()
        await expect(page.get_by_test_id("bid-amount")).to_be_hidden()
        await expect(page.get_by_test_id("countdown")).to_have_attribute("role", "timer")
        live = page.get_by_test_id("live-announce")
        await expect(live).to_have_attribute("aria-live", "polite")
        await check_a11y(page, "room, anonymous")
        await shot(page, "room-anonymous-phone")
        # A bid elsewhere: the new price is announced (at most every 3 s).
        bidder, _ = await hall.bidder(prefix="ann")
        sock = await Socket.connect(stack.ws_url, bidder.token)
        assert (await hall.pay_deposit(bidder, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
        await sock.join(lot["id"])
        assert (await sock.bid(lot["id"], 1_000))["type"] == "accepted"
        await expect(live).to_have_text("当前价 ¥10.00")
        await sock.close()
        await login.click()
        await expect(page).to_have_url(re.compile(r"/login\?next=%2Flots%2F"))
        await ctx.close()
        await browser.close()


async def test_a_newcomer_registers_tops_up_bids_wins_and_pays(stack, hall, wechat_sim):
    """Issue 14's walk: register in the page; the room's deposit is short, so
    top up by WeChat (QR code, the simulator pays, the balance rises live) and
    come back; pay the deposit; bid with the quick buttons; be outbid by a
    second browser (a phone); pause and fair warning shown; win, reload, pay;
    the loser's room says they lost and their deposit's refund, and their /me
    shows it refunded. axe-core on the open and the closed room."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=10_000, deposit=50_000,
                                     start_price=10_000, increment=1_000, title="明宣德青花缠枝莲纹碗",
                                     images=[PHOTO])
    lid = lot["id"]
    rival_api, _ = await hall.bidder(prefix="rival")
    name = f"newbie{int(time.time() * 1000) % 10**9}"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(**DESKTOP)
        await ctx.add_init_script("localStorage.setItem('lang', 'zh');")
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{stack.base}/login?mode=register&next=/me")
        await page.get_by_label("用户名").fill(name)
        await page.get_by_label("密码").fill("secret123")
        await page.get_by_test_id("login-submit").click()
        await expect(page).to_have_url(f"{stack.base}/me")
        await expect(page.get_by_test_id("balance")).to_have_text("¥0.00")
        # The room with ¥0: the deposit says how much is missing and offers a top-up,
        # which comes back filled in, with the way back to the lot.
        await page.goto(f"{stack.base}/lots/{lid}")
        await page.get_by_test_id("deposit-scope-lot").check()
        await expect(page.get_by_test_id("deposit-short")).to_contain_text("余额不足，还差 ¥100.00。")
        await expect(page.get_by_test_id("deposit-pay")).to_be_disabled()
        await page.get_by_test_id("deposit-topup").click()
        await expect(page).to_have_url(f"{stack.base}/me?topup=10000&back=%2Flots%2F{lid}")
        await expect(page.get_by_test_id("topup-amount")).to_have_value("100")
        await expect(page.get_by_test_id("back-to-lot")).to_have_attribute("href", f"/lots/{lid}")
        await page.get_by_test_id("topup-amount").fill("300")
        await page.get_by_test_id("topup-submit").click()
        qr = page.get_by_test_id("wechat-qr")
        await expect(qr).to_be_visible()
        await Api(wechat_sim.url).post("/sim/pay", {"code_url": await qr.get_attribute("data-code-url")})
        await expect(page.get_by_test_id("balance")).to_have_text("¥300.00")

        await page.get_by_test_id("back-to-lot").click()
        await expect(page.get_by_test_id("deposit-balance")).to_have_text("¥300.00")
        await page.get_by_test_id("deposit-scope-lot").check()
        await page.get_by_test_id("deposit-pay").click()
        await expect(page.get_by_test_id("deposit-message")).to_have_text("保证金已生效")
        await page.get_by_test_id("quick-bid-1").click()  # ¥100 + one step: ¥110
        await expect(page.get_by_test_id("room-notice")).to_have_text("出价成功 #1")
        await expect(page.get_by_test_id("price")).to_have_text("¥110.00")
        await expect(page.get_by_test_id("my-position")).to_have_text("您领先")
        await check_a11y(page, "room, open, leading")

        # The second browser: the rival pays a deposit and outbids.
        rctx = await browser.new_context(**PHONE)
        await log_in(rctx, stack.base, rival_api.token, "en")
        rival = await rctx.new_page()
        await rival.goto(f"{stack.base}/lots/{lid}")
        await rival.get_by_test_id("deposit-scope-lot").check()
        await rival.get_by_test_id("deposit-pay").click()
        await expect(rival.get_by_test_id("deposit-message")).to_have_text("Deposit in force")
        await rival.get_by_test_id("bid-button").click()
        await expect(rival.get_by_test_id("room-notice")).to_have_text("Bid accepted #2")
        await expect(page.get_by_test_id("room-notice")).to_have_text("您的出价已被超越，当前价 ¥120.00")
        await expect(page.get_by_test_id("my-position")).to_have_text("您已被超越")
        await page.get_by_test_id("quick-bid-5").click()  # ¥130 + five steps: ¥180
        await expect(page.get_by_test_id("room-notice")).to_have_text("出价成功 #3")
        await expect(rival.get_by_test_id("price")).to_have_text("¥180.00")
        await expect(rival.get_by_test_id("my-position")).to_have_text("You have been outbid")

        # The operator pauses, resumes and gives fair warning: both rooms show each.
        await hall.operator.post(f"/api/admin/lots/{lid}/pause")
        await expect(rival.get_by_test_id("lot-status")).to_have_text("Paused")
        await expect(rival.get_by_test_id("room-notice")).to_have_text("The auction is paused")
        await expect(rival.get_by_test_id("bid-button")).to_be_disabled()
        await expect(page.get_by_test_id("lot-status")).to_have_text("已暂停")
        await hall.operator.post(f"/api/admin/lots/{lid}/resume")
        await expect(rival.get_by_test_id("bid-button")).to_be_enabled()
        await hall.operator.post(f"/api/admin/lots/{lid}/fair-warning")
        await expect(page.get_by_test_id("lot-status")).to_have_text("最后警告")
        await expect(rival.get_by_test_id("room-notice")).to_have_text("Fair warning! Going, going…")

        await hall.operator.post(f"/api/admin/lots/{lid}/hammer")
        await expect(page.get_by_test_id("result-mine")).to_have_attribute("data-state", "won_unpaid",
                                                                          timeout=60_000)
        # The loser's room: they lost, and what becomes of their deposit.
        await expect(rival.get_by_test_id("result-mine")).to_have_attribute("data-state", "lost")
        await expect(rival.get_by_test_id("result-mine")).to_contain_text("You did not win this lot.")
        await expect(rival.get_by_test_id("refund-state")).to_contain_text("¥100.00")
        await check_a11y(rival, "room, closed, lost (phone)")
        # Reloaded, the winner's room still says pay now, and links to the order.
        await page.reload()
        await expect(page.get_by_test_id("result-mine")).to_have_attribute("data-state", "won_unpaid")
        await expect(page.get_by_test_id("result-mine")).to_contain_text("应付 ¥80.00")
        await check_a11y(page, "room, closed, won")
        await page.get_by_test_id("won-pay-link").click()
        await expect(page).to_have_url(re.compile(r"/me#order-\d+$"))
        row = page.get_by_test_id("order-row")
        await expect(row.get_by_test_id("order-lot")).to_have_text("明宣德青花缠枝莲纹碗")
        await expect(row.get_by_test_id("order-due")).to_have_text("¥80.00")  # ¥180 less the ¥100 deposit
        await row.get_by_test_id("order-pay").click()
        await expect(row.get_by_test_id("order-status")).to_have_text("已付款")
        await expect(page.get_by_test_id("balance")).to_have_text("¥120.00")

        # The loser's deposit goes back to the balance; their /me says so.
        await rival.goto(f"{stack.base}/me")
        dep = rival.get_by_test_id("deposit-row")
        await expect(dep.get_by_test_id("deposit-state")).to_have_text("Refunded", timeout=60_000)
        await expect(dep.get_by_test_id("deposit-why")).to_have_text("Refunded to your balance")
        await expect(rival.get_by_test_id("ledger-row").first.get_by_test_id("ledger-what")).to_have_text(
            "Deposit refund · 明宣德青花缠枝莲纹碗")
        await check_a11y(rival, "loser's me")
        await shot(rival, "me-loser-refunded-phone")
        assert not errors, errors
        await browser.close()
