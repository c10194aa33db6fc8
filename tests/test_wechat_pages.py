"""WeChat Pay on the room page in Chromium (issue 15): a desktop page pays a
deposit by Native (a QR code, turning to "paid" when the simulator pays the
scanned code), a phone browser by H5 (WeChat's cashier, simulated, then back
to the room). axe-core on each new state; screenshots in docs/screenshots/."""
from __future__ import annotations

from playwright.async_api import async_playwright, expect

from conftest import Api
from test_backoffice_pages import DESKTOP, PHONE, check_a11y
from test_pages import ARGS, CHROMIUM, log_in, shot

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")

expect.set_options(timeout=20_000)


async def test_native_qr_turns_to_paid_and_h5_completes(stack, hall, wechat_sim):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, deposit=8_800, lot_deposit=1_200,
                                     title="青花瓷瓶 (WeChat)")
    desk_api, _ = await hall.bidder(balance=0)
    phone_api, _ = await hall.bidder(balance=0)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        # -- desktop: Native, a QR code to scan --------------------------------------
        ctx = await browser.new_context(**DESKTOP)
        await log_in(ctx, stack.base, desk_api.token, "zh")
        page = await ctx.new_page()
        await page.goto(f"{stack.base}/lots/{lot['id']}")
        await page.get_by_test_id("deposit-method").select_option("wechat")
        await page.get_by_test_id("deposit-pay").click()
        qr = page.get_by_test_id("wechat-qr")
        await expect(qr).to_be_visible()
        await expect(page.get_by_test_id("wechat-pay")).to_have_attribute("data-scene", "native")
        await expect(page.get_by_test_id("wechat-step")).to_have_text("请用微信扫一扫此二维码完成支付")
        assert await qr.evaluate("img => img.complete && img.naturalWidth > 100")  # drawn
        await check_a11y(page, "native QR")
        await shot(page, "wechat-native-qr-desktop")
        code_url = await qr.get_attribute("data-code-url")
        paid = await Api(wechat_sim.url).post("/sim/pay", {"code_url": code_url})  # scanned, paid
        assert paid["status"] == 200
        await expect(page.get_by_test_id("deposit-paid")).to_be_visible()
        await expect(page.get_by_test_id("deposit-paid")).to_contain_text("保证金已缴纳")
        await expect(qr).to_have_count(0)
        await check_a11y(page, "native paid")
        await shot(page, "wechat-native-paid-desktop")
        await ctx.close()

        # -- phone browser: H5, WeChat's cashier and back ----------------------------
        ctx = await browser.new_context(**PHONE, user_agent=IPHONE_UA)
        await log_in(ctx, stack.base, phone_api.token, "en")
        page = await ctx.new_page()
        await page.goto(f"{stack.base}/lots/{lot['id']}")
        await page.get_by_test_id("deposit-method").select_option("wechat")
        await page.get_by_test_id("deposit-pay").click()
        open_h5 = page.get_by_test_id("wechat-h5-open")
        await expect(open_h5).to_have_text("Open WeChat Pay")
        await expect(page.get_by_test_id("wechat-pay")).to_have_attribute("data-scene", "h5")
        await check_a11y(page, "h5 open")
        await shot(page, "wechat-h5-phone")
        await open_h5.click()
        await expect(page.locator("#amount")).to_have_text("¥88.00")  # the cashier
        await page.get_by_role("button", name="确认支付").click()
        await page.wait_for_url(f"{stack.base}/lots/{lot['id']}")
        await expect(page.get_by_test_id("deposit-paid")).to_contain_text("Deposit paid")
        await shot(page, "wechat-h5-paid-phone")
        await ctx.close()
        await browser.close()


async def test_an_order_paid_by_wechat_from_my_page(stack, hall, wechat_sim):
    """/me on a desktop: "Pay with WeChat" shows the QR code for what is due; the
    simulator pays the scanned code and the order turns to paid."""
    from test_money import won_order
    api, user, sock, order = await won_order(stack, hall, price=6_600, lot_deposit=600,
                                             balance_fen=600)  # the deposit, nothing more
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = await browser.new_context(**DESKTOP)
        await log_in(ctx, stack.base, api.token, "en")
        page = await ctx.new_page()
        await page.goto(f"{stack.base}/me")
        row = page.locator(f"[data-testid=order-row][data-id='{order['id']}']")
        await expect(row.get_by_test_id("order-status")).to_contain_text("Unpaid")
        await row.get_by_test_id("order-pay-wechat").click()
        qr = row.get_by_test_id("wechat-qr")
        await expect(qr).to_be_visible()
        await expect(row.get_by_test_id("wechat-pay")).to_contain_text("¥60.00")  # the due
        await check_a11y(page, "order native QR")
        await shot(page, "wechat-order-qr-desktop")
        paid = await Api(wechat_sim.url).post("/sim/pay", {"code_url": await qr.get_attribute("data-code-url")})
        assert paid["status"] == 200
        await expect(row.get_by_test_id("order-status")).to_contain_text("Paid", timeout=30_000)
        await expect(row.get_by_test_id("wechat-qr")).to_have_count(0)
        await ctx.close()
        await browser.close()
    (mine,) = [o for o in (await api.get("/api/me/orders"))["orders"] if o["id"] == order["id"]]
    assert mine["status"] == "paid"
    await sock.close()
