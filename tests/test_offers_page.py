"""Second-chance offers in a real browser (hall/static/js/offers.js): the
runner-up sits in the room when the winner's order is forfeited; the offer
appears by itself (its `offer` message), with the price and the time left, in
Chinese on a phone; on /me, in English on a desktop, they accept it, follow
the link to pay and pay from the balance. axe-core finds nothing on either
page; screenshots in docs/screenshots/offer_phone.png and offer_desktop.png."""
from __future__ import annotations

import re
import time

from playwright.async_api import async_playwright, expect

from auction.snapshot import mask_name
from test_backoffice_pages import DESKTOP, PHONE, check_a11y
from test_money import check_money, db_exec
from test_offers import sale
from test_pages import ARGS, CHROMIUM, log_in, shot
from test_trust import forfeit

expect.set_options(timeout=20_000)


async def test_an_offer_appears_in_the_room_and_is_accepted_and_paid_on_me(stack, hall):
    lot, (y, w), order = await sale(stack, hall, [180_000, 200_000], start_price=100_000,
                                    increment=20_000, lot_deposit=10_000, buyer_premium_bp=500,
                                    title="清乾隆粉彩花卉纹碗")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        phone_ctx = await browser.new_context(**PHONE)
        await log_in(phone_ctx, stack.base, y.api.token, "zh")
        phone = await phone_ctx.new_page()
        errors: list[str] = []
        phone.on("pageerror", lambda e: errors.append(str(e)))
        await phone.goto(f"{stack.base}/lots/{lot['id']}")
        await expect(phone.get_by_test_id("conn")).to_have_attribute("data-state", "online")
        await expect(phone.get_by_test_id("offers")).to_be_hidden()

        await forfeit(stack, w.sock, order)  # w does not pay: y is offered the lot
        offer = phone.get_by_test_id("offer")
        await expect(offer).to_have_count(1)
        await expect(offer.get_by_test_id("offer-amount")).to_have_text("¥1,800.00")
        await expect(offer.get_by_test_id("offer-lot")).to_have_text("清乾隆粉彩花卉纹碗")
        await expect(offer.get_by_test_id("offer-status")).to_have_text("待答复")
        await expect(offer.get_by_test_id("offer-left")).to_have_text(re.compile(r"^23:\d\d:\d\d$"))
        await expect(phone.get_by_test_id("offers-live")).to_contain_text("您收到一个新的报价")
        await expect(offer.get_by_test_id("offer-accept")).to_have_text("接受并购买")
        await check_a11y(phone, "room with an offer (phone)")
        await shot(phone, "offer_phone")

        # Two more offers for y, from two more forfeited lots: one declined in
        # the room, one answered after its deadline; each outcome in words.
        later, (_, w2), order2 = await sale(stack, hall, [0, 1_200], bidders=[y], title="民国铜炉")
        await forfeit(stack, w2.sock, order2)
        await expect(phone.get_by_test_id("offer")).to_have_count(2)
        gone, (_, w3), order3 = await sale(stack, hall, [0, 1_200], bidders=[y], title="清代木雕")
        await forfeit(stack, w3.sock, order3)
        await expect(phone.get_by_test_id("offer")).to_have_count(3)
        card = phone.locator('[data-testid="offer"]', has_text="民国铜炉")
        await card.get_by_test_id("offer-decline").click()
        await expect(card.get_by_test_id("offer-msg")).to_have_text("已放弃，拍品将转给下一位出价者")
        await expect(card.get_by_test_id("offer-status")).to_have_text("已放弃")
        await expect(card.get_by_test_id("offer-decline")).to_have_count(0)
        (late,) = [o for o in await y.offers() if o["lot_id"] == gone["id"]]
        db_exec(stack, "UPDATE offer SET expires_ms=? WHERE id=?",
                (int(time.time() * 1000) - 1000, late["offer_id"]))
        card = phone.locator('[data-testid="offer"]', has_text="清代木雕")
        await card.get_by_test_id("offer-accept").click()  # the page still counts down
        await expect(card.get_by_test_id("offer-msg")).to_have_text("报价已过期，无法接受")
        await expect(card.get_by_test_id("offer-status")).to_have_text("已过期")
        await check_a11y(phone, "room after a decline and a late accept (phone)")
        await shot(phone, "offer_outcomes_phone")

        desk_ctx = await browser.new_context(**DESKTOP)
        await log_in(desk_ctx, stack.base, y.api.token, "en")
        desk = await desk_ctx.new_page()
        desk.on("pageerror", lambda e: errors.append(str(e)))
        await desk.goto(f"{stack.base}/me")
        offer = desk.get_by_test_id("offer")
        await expect(offer.get_by_test_id("offer-status")).to_have_text("Awaiting your answer")
        await expect(offer.get_by_test_id("offer-decline")).to_have_text("Decline")
        await check_a11y(desk, "/me with an offer (desktop)")
        await shot(desk, "offer_desktop")

        await offer.get_by_test_id("offer-accept").click()
        # 1,800 + 5 % premium, no deposit credited.
        await expect(offer.get_by_test_id("offer-msg")).to_contain_text(
            "Accepted: your order is ready, due ¥1,890.00 · Pay by 20")
        await expect(offer.get_by_test_id("offer-status")).to_have_text("Accepted")
        await expect(offer.get_by_test_id("offer-accept")).to_have_count(0)
        await check_a11y(desk, "/me after accepting (desktop)")
        await shot(desk, "offer_accepted_desktop")
        await offer.get_by_test_id("offer-pay").click()
        await desk.wait_for_url(f"{stack.base}/me")
        orders = await y.api.get("/api/me/orders")
        (mine,) = [o for o in orders["orders"] if o["lot_id"] == lot["id"]]
        row = desk.locator(f'[data-testid="order-row"][data-id="{mine["id"]}"]')
        await row.get_by_test_id("order-pay").click()
        await expect(desk.locator(f'[data-testid="order-row"][data-id="{mine["id"]}"]')).to_have_attribute(
            "data-status", "paid")
        # The room's list reacts too, on its next load: nothing pending is left.
        await phone.reload()
        await expect(phone.get_by_test_id("conn")).to_have_attribute("data-state", "online")
        await expect(phone.get_by_test_id("offers")).to_be_hidden()
        # "Sold to" is the buyer now, not the bidder who forfeited, for everyone.
        snap = await hall.anon.get(f"/api/lots/{lot['id']}")
        assert (snap["winner"], snap["second_chance"], snap["sale_price"], snap["price"]) == (
            mask_name(y.user["username"]), True, 180_000, 200_000)
        await expect(phone.get_by_test_id("result-headline")).to_have_text(
            "已成交 · 成交价 ¥1,800.00 · 买受人: 我 · 由次高出价者递补购得")
        await expect(phone.get_by_test_id("result-mine")).to_have_attribute("data-state", "won_paid")
        await shot(phone, "offer_sold_to_runner_up_phone")
        assert errors == []
        await browser.close()
    assert [o["status"] for o in (await y.api.get("/api/me/orders"))["orders"]
            if o["lot_id"] == lot["id"]] == ["paid"]
    check_money(stack, [y.id, w.id, w2.id, w3.id])
    for b in (y, w, w2, w3):
        await b.sock.close()
