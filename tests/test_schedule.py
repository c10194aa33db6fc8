"""定时发布 / 定时拍卖, staggered closing, pause/resume, editing drafts.

All of it driven by the real beat and eventlet worker of the test stack.
"""
from __future__ import annotations

import asyncio
import time

from conftest import Socket


def now_ms() -> int:
    return int(time.time() * 1000)


async def _until(check, timeout: float = 30):
    """Re-read state that has no event of its own (publication) until it holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_scheduled_publish_then_scheduled_start(stack, hall):
    op = hall.operator
    start_at = now_ms() + 4000
    session = await op.post("/api/admin/sessions", {"title": "定时专场", "deposit_amount": 100,
                                                     "starts_at_ms": start_at})
    lot = await op.post(f"/api/admin/sessions/{session['id']}/lots", {
        "title": "lot", "start_price": 1000, "increment": 100, "lot_deposit": 0,
        "ends_at_ms": now_ms() + 60_000})
    published = await op.post(f"/api/admin/sessions/{session['id']}/publish",
                              {"at_ms": now_ms() + 1500})
    assert published["status"] == "draft"  # not yet: at 1.5 s from now
    # Drafts are invisible to the public until then.
    code, _ = await hall.anon.call("GET", f"/api/lots/{lot['id']}")
    assert code == 404

    async def visible():
        code, body = await hall.anon.call("GET", f"/api/lots/{lot['id']}")
        return body if code == 200 else None
    snap = await _until(visible)
    assert snap["status"] == "scheduled"
    sessions = (await hall.anon.get("/api/sessions?status=published"))["sessions"]
    assert session["id"] in [s["id"] for s in sessions]

    # Bids before the start are refused; the room hears the lot go live.
    bidder, _ = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, bidder.token)
    await sock.join(lot["id"])
    assert (await sock.bid(lot["id"], 1000))["code"] in ("lot_not_open", "no_deposit")
    live = await sock.wait_for(lambda m: m.get("type") == "lot_status" and m.get("status") == "live")
    assert live["server_time_ms"] >= start_at
    assert (await hall.anon.get(f"/api/sessions/{session['id']}"))["status"] == "live"
    await sock.close()


async def test_staggered_closing(stack, hall):
    op = hall.operator
    session = await op.post("/api/admin/sessions", {"title": "stagger", "deposit_amount": 0,
                                                     "stagger_s": 2})
    first_end = now_ms() + 5000
    lots = [await op.post(f"/api/admin/sessions/{session['id']}/lots", {
        "title": f"lot {i}", "start_price": 1000, "increment": 100, "lot_deposit": 0,
        "ends_at_ms": first_end, "extend_window_s": 0}) for i in range(3)]
    await op.post(f"/api/admin/sessions/{session['id']}/publish", {})
    watcher = await Socket.connect(stack.ws_url)
    snaps = [await watcher.join(lot["id"]) for lot in lots]
    assert [s["deadline_ms"] - first_end for s in snaps] == [0, 2000, 4000]
    closed = [await watcher.wait_for(lambda m, lid=lot["id"]: m.get("type") == "closed"
                                     and m["lot_id"] == lid, timeout=30) for lot in lots]
    order = sorted(closed, key=lambda m: m["server_time_ms"])
    assert [m["lot_id"] for m in order] == [lot["id"] for lot in lots]
    assert all(m["result"] == "unsold" and m["winner"] is None for m in closed)
    await watcher.close()


async def test_pause_stops_the_countdown_and_resume_restores_it(stack, hall):
    _s, (lot,) = await hall.live_lots(1, ends_in_s=120, extend_window_s=0)
    lid = lot["id"]
    bidder, _ = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, bidder.token)
    assert (await hall.pay_deposit(bidder, sock, lid))["state"] == "SUCCESS"
    await sock.join(lid)
    await hall.operator.post(f"/api/admin/lots/{lid}/pause")
    paused = await sock.wait_for(lambda m: m.get("type") == "lot_status" and m["status"] == "paused")
    remaining = paused["deadline_ms"] - paused["server_time_ms"]
    assert (await sock.bid(lid, 1000))["code"] == "lot_not_open"
    resumed_lot = await hall.operator.post(f"/api/admin/lots/{lid}/resume")
    assert resumed_lot["status"] == "live"
    resumed = await sock.wait_for(lambda m: m.get("type") == "lot_status" and m["status"] == "live")
    assert resumed["deadline_ms"] - resumed["server_time_ms"] == remaining
    assert (await sock.bid(lid, 1000))["type"] == "accepted"
    await hall.operator.post(f"/api/admin/lots/{lid}/fair-warning")
    warn = await sock.wait_for(lambda m: m.get("type") == "lot_status" and m["status"] == "fair_warning")
    assert warn["lot_id"] == lid
    hammer = await hall.operator.post(f"/api/admin/lots/{lid}/hammer")
    assert hammer["status"] == "closed"
    closed = await sock.wait_for(lambda m: m.get("type") == "closed")
    assert closed["result"] == "sold" and closed["price"] == 1000 and closed.get("mine") is True
    await sock.close()


async def test_edit_drafts_only(stack, hall):
    op = hall.operator
    session, (lot,) = await hall.session_with_lots(1)
    edited = await op.ok("PATCH", f"/api/admin/sessions/{session['id']}",
                         {"title": "改过的标题", "deposit_amount": 2000})
    assert edited["title"] == "改过的标题" and edited["deposit_amount"] == 2000
    edited_lot = await op.ok("PATCH", f"/api/admin/lots/{lot['id']}",
                             {"start_price": 5000, "increment": [[10000, 500], [None, 1000]]})
    assert edited_lot["start_price"] == 5000 and edited_lot["next_min_bid"] == 5000
    for bad in ({"start_price": 1.5}, {"increment": [[1000, 10], [500, 5]]}, {"status": "live"}):
        code, body = await op.call("PATCH", f"/api/admin/lots/{lot['id']}", bad)
        assert (code, body["code"]) == (400, "invalid")
    bidder, _ = await hall.bidder(balance=0)
    code, body = await bidder.call("PATCH", f"/api/admin/lots/{lot['id']}", {"title": "x"})
    assert (code, body["code"]) == (403, "forbidden")
    await op.post(f"/api/admin/sessions/{session['id']}/publish", {})
    code, body = await op.call("PATCH", f"/api/admin/lots/{lot['id']}", {"title": "late"})
    assert (code, body["code"]) == (409, "conflict")
    snap = await hall.anon.get(f"/api/lots/{lot['id']}")
    assert snap["title"] == "lot 0" and snap["start_price"] == 5000
