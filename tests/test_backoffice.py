"""The back office from outside (issue 13): the audit log, the catalog API,
photos, exports. Browser tests of the pages are in tests/test_backoffice_pages.py."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Socket
from workerctl import until as poll

ROOT = Path(__file__).resolve().parent.parent


def db_path(stack) -> str:
    return stack.env["DATABASE_URL"].removeprefix("sqlite:///")


def query(stack, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(db_path(stack), timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def audit(hall, **filters) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in filters.items())
    return (await hall.operator.get(f"/api/admin/audit?limit=1000&{qs}"))["entries"]


# -- audit log -------------------------------------------------------------------

async def test_operator_actions_are_audited_with_actor_before_and_after(stack, hall):
    op = hall.operator
    me = await op.get("/api/me")
    session = await op.post("/api/admin/sessions", {"title": "审计专场", "deposit_amount": 1000})
    sid = session["id"]
    lot = await op.post(f"/api/admin/sessions/{sid}/lots", {
        "title": "审计拍品", "start_price": 1000, "increment": 100, "lot_deposit": 0,
        "ends_at_ms": int(time.time() * 1000) + 3_600_000})
    await op.call("PATCH", f"/api/admin/lots/{lot['id']}", {"title": "改名拍品"})
    await op.call("PATCH", f"/api/admin/sessions/{sid}", {"deposit_amount": 2000})

    entries = await audit(hall, target=f"session:{sid}")
    assert [e["action"] for e in entries] == ["session.create", "session.edit"]
    assert all(e["actor"] == me["username"] and e["actor_id"] == me["id"] for e in entries)
    assert entries[1]["before"] == {"deposit_amount": 1000}
    assert entries[1]["after"] == {"deposit_amount": 2000}
    lot_entries = await audit(hall, target=f"lot:{lot['id']}")
    assert [e["action"] for e in lot_entries] == ["lot.create", "lot.edit"]
    assert lot_entries[1]["before"] == {"title": "审计拍品"}
    assert lot_entries[1]["after"] == {"title": "改名拍品"}

    # Live controls: one entry per change of state; pausing a paused lot changes nothing.
    watcher = await Socket.connect(stack.ws_url)
    await op.post(f"/api/admin/sessions/{sid}/publish", {})
    snap = await watcher.join(lot["id"])
    if snap["status"] != "live":
        await watcher.wait_for(lambda m: m.get("type") == "lot_status" and m.get("status") == "live")
    await op.post(f"/api/admin/lots/{lot['id']}/pause")
    await op.post(f"/api/admin/lots/{lot['id']}/pause")
    await op.post(f"/api/admin/lots/{lot['id']}/resume")
    await op.post(f"/api/admin/lots/{lot['id']}/hammer")
    await watcher.close()
    actions = [e["action"] for e in await audit(hall, target=f"lot:{lot['id']}")]
    assert actions == ["lot.create", "lot.edit", "lot.pause", "lot.resume", "lot.hammer"]
    pause = (await audit(hall, target=f"lot:{lot['id']}", action="lot.pause"))[0]
    assert pause["before"] == {"status": "live"} and pause["after"] == {"status": "paused"}
    assert [e["action"] for e in await audit(hall, target=f"session:{sid}")][-1] == "session.publish"


async def test_every_money_movement_has_exactly_one_audit_entry(stack, hall):
    """Credit, deposit by balance, the loser's refund: each ledger entry has
    one money.<kind> audit entry naming its ref, with the balance before and after."""
    op = hall.operator
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, start_price=50_000, lot_deposit=5_000)
    lid = lot["id"]
    alice, alice_user = await hall.bidder(prefix="alice", balance=100_000)
    bob, _ = await hall.bidder(prefix="bob", balance=100_000)
    a = await Socket.connect(stack.ws_url, alice.token)
    b = await Socket.connect(stack.ws_url, bob.token)
    for api, sock in ((alice, a), (bob, b)):
        assert (await hall.pay_deposit(api, sock, lid, scope="lot"))["state"] == "SUCCESS"
    await a.join(lid)
    await b.join(lid)
    assert (await a.bid(lid, 50_000))["type"] == "accepted"
    assert (await b.bid(lid, 50_100))["type"] == "accepted"
    mark = len(a.messages)
    await op.post(f"/api/admin/lots/{lid}/hammer")
    # Alice lost: her lot deposit comes back (a `refund` message once it is done).
    await a.wait_for(lambda m: m.get("type") == "refund", start=mark, timeout=60)
    for s in (a, b):
        await s.close()

    entries = await audit(hall, target=f"user:{alice_user['id']}")
    assert [e["action"] for e in entries] == ["money.credit", "money.deposit", "money.refund"]
    credit, deposit, refund = entries
    assert credit["before"] == {"balance": 0} and credit["after"]["balance"] == 100_000
    assert credit["actor_id"] is not None  # the operator who credited
    assert deposit["before"] == {"balance": 100_000} and deposit["after"]["balance"] == 95_000
    assert deposit["actor"] == "system" and deposit["after"]["amount"] == -5_000
    assert refund["before"] == {"balance": 95_000} and refund["after"]["balance"] == 100_000

    # Across everything every test so far did: one audit entry per ledger entry
    # (money that moves no balance, a WeChat payment or refund, has its own
    # entries without a ledger ref: tests/test_money.py follows those).
    ledger = query(stack, "SELECT ref FROM ledgerentry")
    audited = query(stack, "SELECT json_extract(after, '$.ref') FROM auditentry "
                           "WHERE action LIKE 'money.%' AND json_extract(after, '$.ref') IS NOT NULL")
    assert sorted(r for (r,) in ledger) == sorted(r for (r,) in audited)


async def test_the_audit_log_cannot_be_changed(stack, hall):
    await hall.operator.post("/api/admin/sessions", {"title": "x", "deposit_amount": 0})
    entries = await audit(hall)
    assert entries
    first = entries[0]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        code, data = await hall.operator.call(method, "/api/admin/audit",
                                              {"action": "lot.pause"} if method != "DELETE" else None)
        assert code in (400, 405) and data["code"] == "invalid", (method, code, data)
        code, _ = await hall.operator.call(method, f"/api/admin/audit/{first['id']}",
                                           {} if method != "DELETE" else None)
        assert code == 404
    # Not even the database takes an update or a delete.
    conn = sqlite3.connect(db_path(stack), timeout=10)
    for sql in ("UPDATE auditentry SET actor = 'someone' WHERE id = ?",
                "DELETE FROM auditentry WHERE id = ?"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql, (first["id"],))
    conn.close()
    assert (await audit(hall))[0] == first
    # Filters and paging.
    page = (await hall.operator.get(f"/api/admin/audit?since_id={first['id']}&limit=1"))["entries"]
    assert len(page) == 1 and page[0]["id"] > first["id"]
    for bad in ("limit=abc", "target=lot:x", "since_id=-1", "action=DROP%20TABLE"):
        code, data = await hall.operator.call("GET", f"/api/admin/audit?{bad}")
        assert code == 400 and data["code"] == "invalid", bad


# -- photos ----------------------------------------------------------------------

def multipart(filename: str, data: bytes, content_type: str = "image/jpeg") -> tuple[bytes, dict]:
    boundary = "----hallTestBoundary7MA4YWxkTrZu0gW"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (1200, 900), exif: bool = False) -> bytes:
    import io
    from PIL import Image
    im = Image.new("RGB", size, (180, 40, 40))
    for x in range(0, size[0], 50):  # some content, so the encoder has work
        im.paste((20, 20, 160), (x, 0, x + 10, size[1]))
    out = io.BytesIO()
    kwargs = {}
    if exif:
        ex = Image.Exif()
        ex[0x010F] = "SecretCam"      # Make
        ex[0x0112] = 6                # Orientation: rotate 90 on display
        kwargs["exif"] = ex.tobytes()
    im.save(out, fmt, **kwargs)
    return out.getvalue()


def media_files(stack) -> set[str]:
    from pathlib import Path
    root = Path(stack.env["HALL_DATA_DIR"]) / "media" / "images"
    return {p.name for p in root.iterdir()} if root.exists() else set()


async def upload(api, filename: str, data: bytes, content_type: str = "image/jpeg"):
    body, headers = multipart(filename, data, content_type)
    return await api.call("POST", "/api/admin/images", raw=body, headers=headers)


async def test_photo_upload_reencodes_strips_metadata_and_thumbnails(stack, hall):
    import io
    from PIL import Image
    code, photo = await upload(hall.operator, "vase.jpg", image_bytes(size=(3000, 2000), exif=True))
    assert code == 201, photo
    # Turned upright by its EXIF orientation, then scaled to at most 2048 px.
    assert photo["height"] == 2048 and photo["width"] in (1365, 1366)
    full = await hall.anon.http.fetch(stack.base + photo["url"])
    thumb = await hall.anon.http.fetch(stack.base + photo["thumb_url"])
    assert full.headers["Content-Type"] == "image/jpeg"
    im = Image.open(io.BytesIO(full.body))
    assert im.size == (photo["width"], 2048)
    assert not im.getexif() and b"SecretCam" not in full.body  # metadata gone
    assert max(Image.open(io.BytesIO(thumb.body)).size) == 480
    # PNG with transparency and WebP are taken too (stored as JPEG).
    for fmt in ("PNG", "WEBP"):
        code, other = await upload(hall.operator, f"x.{fmt.lower()}", image_bytes(fmt, (300, 200)),
                                   f"image/{fmt.lower()}")
        assert code == 201 and other["url"].endswith(".jpg"), other
    # A lot takes the photos' URLs; the room shows them.
    session, (lot,) = await hall.session_with_lots(1, ends_in_s=3600,
                                                   images=[photo["url"]])
    assert (await hall.operator.get(f"/api/lots/{lot['id']}"))["images"] == [photo["url"]]


async def test_bad_uploads_get_clear_errors_and_nothing_is_stored(stack, hall):
    import io
    import os
    from PIL import Image
    before = media_files(stack)
    # A text file named .jpg.
    code, data = await upload(hall.operator, "photo.jpg", b"this is not a picture\n" * 50)
    assert code == 415 and data["code"] == "unsupported_media", data
    assert "JPEG, PNG or WebP" in data["message"]
    # A real 20 MB image (random pixels do not compress).
    w = 2600
    noise = Image.frombytes("RGB", (w, w), os.urandom(w * w * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    assert len(out.getvalue()) > 20 * 1024 * 1024 * 0.95
    code, data = await upload(hall.operator, "big.png", out.getvalue(), "image/png")
    assert code == 400 and data["code"] == "invalid" and "10 MB" in data["message"], data
    # A decompression bomb: a few KB of PNG that would decode to 144 megapixels.
    bomb = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, "PNG", optimize=True)
    assert len(bomb.getvalue()) < 100_000
    code, data = await upload(hall.operator, "bomb.png", bomb.getvalue(), "image/png")
    assert code == 400 and data["code"] == "invalid" and "pixels" in data["message"], data
    # A truncated JPEG, an empty file, no file at all.
    code, data = await upload(hall.operator, "cut.jpg", image_bytes()[:2000])
    assert code == 400 and data["code"] == "invalid", data
    code, data = await upload(hall.operator, "empty.jpg", b"")
    assert code in (400, 415) and data["code"] in ("invalid", "unsupported_media"), data
    code, data = await hall.operator.call("POST", "/api/admin/images", {"file": "x"})
    assert code == 400 and data["code"] == "invalid"
    assert media_files(stack) == before  # nothing stored for any of them
    # A bidder cannot upload (and nothing is stored either).
    bidder, _ = await hall.bidder(balance=0)
    code, data = await upload(bidder, "vase.jpg", image_bytes())
    assert code == 403 and data["code"] == "forbidden"
    assert media_files(stack) == before


# -- exports ---------------------------------------------------------------------

async def fetch_raw(api, path: str):
    resp = await api.http.fetch(api.base + path, raise_error=False,
                                headers={"Authorization": f"Bearer {api.token}"} if api.token else {})
    return resp.code, resp.headers, resp.body


def pdf_text(data: bytes) -> str:
    import subprocess
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


async def wait_order(api, sock, lot_id: int) -> dict:
    while True:
        # The mark before the read: a message that lands during the read still
        # wakes the wait below (taken after, it would be missed).
        mark = len(sock.messages)
        orders = [o for o in (await api.get("/api/me/orders"))["orders"] if o["lot_id"] == lot_id]
        if orders:
            return orders[0]
        await sock.wait_for(lambda m: m.get("type") in ("won", "task", "order"),
                            start=mark, timeout=30)


async def test_results_csv_and_sale_confirmation_pdf(stack, hall):
    import csv
    import io
    session, (sold, unsold) = await hall.live_lots(
        2, ends_in_s=3600, start_price=120_000, increment=1_000, lot_deposit=0,
        buyer_premium_bp=1000, title="清乾隆粉彩花卉纹碗")
    alice, _ = await hall.bidder(prefix="alice")
    bob, bob_user = await hall.bidder(prefix="bob")
    a = await Socket.connect(stack.ws_url, alice.token)
    b = await Socket.connect(stack.ws_url, bob.token)
    for api, sock in ((alice, a), (bob, b)):
        assert (await hall.pay_deposit(api, sock, sold["id"]))["state"] == "SUCCESS"
    await a.join(sold["id"])
    await b.join(sold["id"])
    assert (await a.bid(sold["id"], 120_000))["type"] == "accepted"
    assert (await b.bid(sold["id"], 123_000))["type"] == "accepted"
    await hall.operator.post(f"/api/admin/lots/{sold['id']}/hammer")
    await hall.operator.post(f"/api/admin/lots/{unsold['id']}/hammer")
    order = await wait_order(bob, b, sold["id"])
    assert order["amount"] == 123_000 and order["premium"] == 12_300
    # The session deposit (¥100) is credited to the order once the settlement has run.
    for _ in range(100):
        mark = len(b.messages)  # before the read, as in wait_order
        order = [o for o in (await bob.get("/api/me/orders"))["orders"] if o["id"] == order["id"]][0]
        if order["deposit_credited"]:
            break
        await b.wait_for(lambda m: True, start=mark, timeout=30)
    assert order["due"] == 123_000 + 12_300 - 10_000

    code, headers, body = await fetch_raw(hall.operator, f"/api/admin/sessions/{session['id']}/results.csv")
    assert code == 200 and headers["Content-Type"].startswith("text/csv")
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    by_id = {int(r["lot_id"]): r for r in rows}
    assert by_id[sold["id"]]["title"] == "清乾隆粉彩花卉纹碗"
    assert by_id[sold["id"]]["result"] == "sold" and by_id[sold["id"]]["hammer_yuan"] == "1230.00"
    assert by_id[sold["id"]]["premium_yuan"] == "123.00" and by_id[sold["id"]]["due_yuan"] == "1253.00"
    assert by_id[sold["id"]]["winner"] == bob_user["username"]
    assert by_id[sold["id"]]["order_status"] == "unpaid"
    assert by_id[unsold["id"]]["result"] == "unsold" and by_id[unsold["id"]]["winner"] == ""
    code, _, _ = await fetch_raw(bob, f"/api/admin/sessions/{session['id']}/results.csv")
    assert code == 403

    path = f"/api/orders/{order['id']}/confirmation.pdf"
    for who in (bob, hall.operator):
        code, headers, body = await fetch_raw(who, path)
        assert code == 200 and headers["Content-Type"] == "application/pdf" and body[:5] == b"%PDF-"
        text = pdf_text(body)
        assert "成交确认书" in text and "清乾隆粉彩花卉纹碗" in text
        assert "¥1230.00" in text and "¥1253.00" in text and "¥100.00" in text and bob_user["username"] in text
    # Someone else's order does not exist for them.
    code, _, _ = await fetch_raw(alice, path)
    assert code == 404
    code, _, _ = await fetch_raw(hall.anon, path)
    assert code == 401
    for s in (a, b):
        await s.close()


# -- catalog API -------------------------------------------------------------------

async def test_deadlines_from_the_start_reorder_and_late_deadlines(stack, hall):
    op = hall.operator
    now = int(time.time() * 1000)
    session = await op.post("/api/admin/sessions", {"title": "相对截止 专场", "deposit_amount": 0})
    sid = session["id"]
    rel = await op.post(f"/api/admin/sessions/{sid}/lots", {
        "title": "一小时后截止", "start_price": 100, "increment": 10, "lot_deposit": 0,
        "ends_after_start_s": 3600})
    fixed = await op.post(f"/api/admin/sessions/{sid}/lots", {
        "title": "定时截止", "start_price": 100, "increment": 10, "lot_deposit": 0,
        "ends_at_ms": now + 300_000})
    code, data = await op.call("POST", f"/api/admin/sessions/{sid}/lots", {
        "title": "both", "start_price": 100, "increment": 10, "lot_deposit": 0,
        "ends_at_ms": now + 60_000, "ends_after_start_s": 60})
    assert code == 400 and data["code"] == "invalid"
    listed = (await op.get(f"/api/admin/sessions?status=draft&q={'相对截止'}"))["sessions"]
    assert [s["id"] for s in listed] == [sid] and listed[0]["lot_count"] == 2
    # Reorder: every lot once, else invalid.
    code, data = await op.call("POST", f"/api/admin/sessions/{sid}/reorder", {"lot_ids": [fixed["id"]]})
    assert code == 400 and data["code"] == "invalid"
    await op.post(f"/api/admin/sessions/{sid}/reorder", {"lot_ids": [fixed["id"], rel["id"]]})
    detail = await op.get(f"/api/sessions/{sid}")
    assert [lot["id"] for lot in detail["lots"]] == [fixed["id"], rel["id"]]
    # The session now starts after the fixed deadline: publishing is refused, naming the lot.
    await op.call("PATCH", f"/api/admin/sessions/{sid}", {"starts_at_ms": now + 600_000})
    code, data = await op.call("POST", f"/api/admin/sessions/{sid}/publish", {})
    assert code == 409 and data["code"] == "conflict" and "定时截止" in data["message"], data
    assert data["late_lots"] == [{"id": fixed["id"], "title": "定时截止"}]  # for the pages to name them
    assert (await op.get(f"/api/sessions/{sid}"))["status"] == "draft"
    await op.call("PATCH", f"/api/admin/lots/{fixed['id']}", {"ends_after_start_s": 7200})
    await op.call("PATCH", f"/api/admin/sessions/{sid}", {"starts_at_ms": None})
    before_publish = int(time.time() * 1000)
    await op.post(f"/api/admin/sessions/{sid}/publish", {})
    lots = {lot["id"]: lot for lot in (await op.get(f"/api/sessions/{sid}"))["lots"]}
    # An hour from when it really opened, not from when it was typed in.
    assert before_publish + 3_600_000 <= lots[rel["id"]]["deadline_ms"] <= int(time.time() * 1000) + 3_600_000
    assert lots[fixed["id"]]["deadline_ms"] >= before_publish + 7_200_000


async def test_fair_warning_is_a_state_with_its_own_countdown(stack, hall):
    """A clerk's fair warning: the room hears `fair_warning` with a deadline a
    few seconds away, the snapshot and the dashboard show the warning's end, a
    new bid ends the warning (and the soft close extends the lot), a pause ends
    it too, and a warning nobody answers closes the lot when it runs out."""
    op = hall.operator
    _, (lot, quiet) = await hall.live_lots(2, ends_in_s=3600)
    lid = lot["id"]
    api, _ = await hall.bidder(prefix="fw")
    sock = await Socket.connect(stack.ws_url, api.token)
    assert (await hall.pay_deposit(api, sock, lid))["state"] == "SUCCESS"
    await sock.join(lid)
    await sock.join(quiet["id"])
    assert (await sock.bid(lid, lot["start_price"]))["type"] == "accepted"
    mark = len(sock.messages)
    warned = await op.post(f"/api/admin/lots/{lid}/fair-warning", {"seconds": 30})
    assert warned["status"] == "live"  # the contract's status; the warning is its own field
    msg = await sock.wait_for(lambda m: m.get("type") == "lot_status" and m["lot_id"] == lid, start=mark)
    assert msg["status"] == "fair_warning"
    assert msg["deadline_ms"] - msg["server_time_ms"] == 30_000  # the warning's countdown, not the hour
    snap = await hall.anon.get(f"/api/lots/{lid}")
    assert snap["fair_warning_ends_ms"] == snap["deadline_ms"] == msg["deadline_ms"]
    overview = await op.get("/api/admin/overview")
    assert overview["fair_warning_s"] == 10  # HALL_FAIR_WARNING_S, for the console's question
    rooms = {r["lot_id"]: r for r in overview["rooms"]}
    assert rooms[lid]["fair_warning_ends_ms"] == msg["deadline_ms"]
    entry = (await audit(hall, target=f"lot:{lid}", action="lot.fair_warning"))[-1]
    assert entry["after"]["deadline_ms"] == msg["deadline_ms"]
    # A new bid answers the warning: it is over, and the soft close gives time again.
    other, _ = await hall.bidder(prefix="fw")
    sock2 = await Socket.connect(stack.ws_url, other.token)
    assert (await hall.pay_deposit(other, sock2, lid))["state"] == "SUCCESS"
    await sock2.join(lid)
    bid = await sock2.bid(lid, snap["next_min_bid"])
    assert bid["type"] == "accepted", bid
    await sock2.close()
    snap = await hall.anon.get(f"/api/lots/{lid}")
    assert "fair_warning_ends_ms" not in snap and snap["deadline_ms"] > msg["deadline_ms"]
    # Warned again, then paused: a pause ends it.
    await op.post(f"/api/admin/lots/{lid}/fair-warning")  # HALL_FAIR_WARNING_S
    assert "fair_warning_ends_ms" in await hall.anon.get(f"/api/lots/{lid}")
    await op.post(f"/api/admin/lots/{lid}/pause")
    await op.post(f"/api/admin/lots/{lid}/resume")
    assert "fair_warning_ends_ms" not in await hall.anon.get(f"/api/lots/{lid}")
    for bad in ({"seconds": 0}, {"seconds": "5"}, {"seconds": 601}):
        code, data = await op.call("POST", f"/api/admin/lots/{lid}/fair-warning", bad)
        assert code == 400 and data["code"] == "invalid", (bad, data)
    # Nobody answers a warning on the quiet lot: it closes when the countdown runs out.
    mark = len(sock.messages)
    await op.post(f"/api/admin/lots/{quiet['id']}/fair-warning", {"seconds": 2})
    warn = await sock.wait_for(lambda m: m.get("type") == "lot_status" and m["lot_id"] == quiet["id"], start=mark)
    rooms = {r["lot_id"]: r for r in (await op.get("/api/admin/overview"))["rooms"]}
    assert rooms[quiet["id"]]["fair_warning_ends_ms"] == warn["deadline_ms"], rooms[quiet["id"]]
    closed = await sock.wait_for(lambda m: m.get("type") == "closed" and m["lot_id"] == quiet["id"],
                                 start=mark, timeout=30)
    assert closed["result"] == "unsold" and warn["status"] == "fair_warning"
    await sock.close()


async def test_a_malformed_multipart_form_is_invalid_not_a_500(stack, hall):
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"\xff\x9a\x12\"\r\n\r\n"
            f"abc\r\n--{boundary}--\r\n").encode("latin-1")
    code, data = await hall.operator.call(
        "POST", "/api/admin/images", raw=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert code == 400 and data["code"] == "invalid", data


# -- people and money ------------------------------------------------------------------

async def test_ban_unban_with_reason_refuses_deposits_and_bids(stack, hall):
    op = hall.operator
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    api, user = await hall.bidder(prefix="banme", balance=100_000)
    sock = await Socket.connect(stack.ws_url, api.token)
    assert (await hall.pay_deposit(api, sock, lot["id"]))["state"] == "SUCCESS"
    found = (await op.get(f"/api/admin/users?q={user['username']}"))["users"]
    assert [u["id"] for u in found] == [user["id"]]
    assert found[0]["status"] == "active" and found[0]["strikes"] == 0
    code, data = await op.call("POST", f"/api/admin/users/{user['id']}/ban", {})
    assert code == 400 and data["code"] == "invalid"  # a reason is required
    banned = await op.post(f"/api/admin/users/{user['id']}/ban", {"reason": "恶意抬价"})
    assert banned["status"] == "banned" and banned["ban_reason"] == "恶意抬价"
    # Bids (socket and HTTP) and deposits are refused with `banned`; nothing placed.
    await sock.join(lot["id"])
    assert (await sock.bid(lot["id"], 1000))["code"] == "banned"
    code, data = await api.call("POST", f"/api/lots/{lot['id']}/bids", {"amount": 1000, "ref": "r1"})
    assert code == 403 and data["code"] == "banned"
    code, data = await api.call("POST", f"/api/lots/{lot['id']}/deposit",
                                {"scope": "lot", "method": "balance"})
    assert code == 403 and data["code"] == "banned"
    assert (await hall.anon.get(f"/api/lots/{lot['id']}"))["bid_count"] == 0
    assert [u["id"] for u in (await op.get("/api/admin/users?status=banned"))["users"]].count(user["id"]) == 1
    await op.post(f"/api/admin/users/{user['id']}/unban", {"reason": "申诉通过"})
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"
    entries = await audit(hall, target=f"user:{user['id']}")
    ban, unban = [e for e in entries if e["action"] in ("user.ban", "user.unban")]
    assert ban["after"] == {"status": "banned", "reason": "恶意抬价"} and ban["before"]["status"] == "active"
    assert unban["after"]["status"] == "active" and unban["after"]["reason"] == "申诉通过"
    detail = await op.get(f"/api/admin/users/{user['id']}")
    assert [d["scope"] for d in detail["deposits"]] == ["session"]
    assert detail["ledger"][0]["kind"] == "deposit"
    # Credit with a reason: the reason is in the ledger memo and the audit entry.
    await op.post(f"/api/admin/users/{user['id']}/credit", {"amount": 500, "reason": "补偿运费"})
    credit = (await audit(hall, target=f"user:{user['id']}", action="money.credit"))[-1]
    assert credit["after"]["memo"] == "补偿运费" and credit["after"]["amount"] == 500
    await sock.close()


async def test_admin_orders_with_payments_refunds_and_filters(stack, hall):
    op = hall.operator
    session, (lot,) = await hall.live_lots(1, ends_in_s=3600, start_price=50_000, lot_deposit=5_000)
    alice, _ = await hall.bidder(prefix="alice")
    bob, bob_user = await hall.bidder(prefix="bob")
    a = await Socket.connect(stack.ws_url, alice.token)
    b = await Socket.connect(stack.ws_url, bob.token)
    for api, sock in ((alice, a), (bob, b)):
        assert (await hall.pay_deposit(api, sock, lot["id"], scope="lot"))["state"] == "SUCCESS"
    await a.join(lot["id"])
    assert (await a.bid(lot["id"], 50_000))["type"] == "accepted"
    await b.join(lot["id"])
    assert (await b.bid(lot["id"], 50_100))["type"] == "accepted"
    await op.post(f"/api/admin/lots/{lot['id']}/hammer")
    order = await wait_order(bob, b, lot["id"])
    orders = (await op.get(f"/api/admin/orders?session_id={session['id']}"))["orders"]
    assert [(o["id"], o["user_id"], o["status"]) for o in orders] == [(order["id"], bob_user["id"], "unpaid")]
    assert orders[0]["username"] == bob_user["username"] and orders[0]["payments"] == []
    assert (await op.get(f"/api/admin/orders?session_id={session['id']}&status=paid"))["orders"] == []
    for bad in ("status=lost", "session_id=x"):
        code, data = await op.call("GET", f"/api/admin/orders?{bad}")
        assert code == 400 and data["code"] == "invalid"
    # One order for its page; bob pays it by balance, and its audit trail follows.
    paying = await bob.post(f"/api/orders/{order['id']}/pay", {"method": "balance"})
    done = await b.wait_for(lambda m: m.get("type") == "task" and m.get("task_id") == paying["task_id"])
    assert done["state"] == "SUCCESS", done
    one = await op.get(f"/api/admin/orders/{order['id']}")
    assert one["id"] == order["id"] and one["status"] == "paid" and one["paid_at_ms"]
    assert one["lot"]["id"] == lot["id"] and one["lot"]["title"] == lot["title"]
    assert one["session"]["id"] == session["id"]
    assert one["winner"] == {"id": bob_user["id"], "username": bob_user["username"],
                             "status": "active", "strikes": 0}
    assert (one["amount"], one["deposit_credited"]) == (50_100, 5_000)
    assert one["due"] == one["amount"] + one["premium"] - one["deposit_credited"]
    assert one["pay_deadline_ms"] == order["pay_by_ms"]
    assert one["payments"] == [] and [d["amount"] for d in one["deposits"]] == [5_000]
    actions = [e["action"] for e in one["audit"]]
    assert "lot.hammer" in actions and "money.deposit" in actions and "money.order" in actions, actions
    paid = next(e for e in one["audit"] if e["action"] == "money.order")
    assert paid["target"] == f"user:{bob_user['id']}" and paid["after"]["amount"] == -one["due"]
    # Alice's money is not bob's order's business.
    alice_id = (await alice.get("/api/me"))["id"]
    assert all(e["target"] != f"user:{alice_id}" for e in one["audit"])
    code, data = await bob.call("GET", f"/api/admin/orders/{order['id']}")
    assert code == 403 and data["code"] == "forbidden"
    code, data = await op.call("GET", "/api/admin/orders/999999999")
    assert code == 404 and data["code"] == "not_found"
    for s in (a, b):
        await s.close()


# -- jobs ------------------------------------------------------------------------------

async def job_rows(hall, until, **filters) -> list[dict]:
    """The jobs list once `until(rows)` holds (the record is written as the run ends,
    just after the owner's `task` message)."""
    qs = "&".join(f"{k}={v}" for k, v in filters.items())

    async def matching() -> list[dict] | None:
        rows = (await hall.operator.get(f"/api/admin/jobs?{qs}"))["jobs"]
        return rows if until(rows) else None
    return await poll(matching, f"jobs matching {filters}", 30)


async def test_jobs_record_money_tasks_and_rerun_a_failed_one(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=5_000)
    api, user = await hall.bidder(prefix="job", balance=1_000)  # too little for the deposit
    sock = await Socket.connect(stack.ws_url, api.token)
    failed = await hall.pay_deposit(api, sock, lot["id"], scope="lot")
    assert failed["state"] == "FAILURE"
    rows = await job_rows(hall, lambda r: r and r[0]["state"] == "FAILURE", user_id=user["id"])
    job = rows[0]
    assert job["task_id"] == failed["task_id"] and job["kind"] == "pay_deposit"
    assert job["lot_id"] == lot["id"] and job["user_id"] == user["id"]
    assert job["error"].startswith("insufficient_balance") and job["rerunnable"] is True
    assert job["finished_at_ms"] >= job["started_at_ms"]
    assert [j["task_id"] for j in (await hall.operator.get(
        f"/api/admin/jobs?lot_id={lot['id']}&state=FAILURE"))["jobs"]] == [job["task_id"]]
    metrics = (await hall.anon.http.fetch(stack.base + "/metrics")).body.decode()
    assert 'hall_queue_depth{queue="money"}' in metrics
    # The hall froze its start-up objects out of collections and times each one (hall/gcpause.py).
    assert int(re.search(r"^hall_gc_frozen_objects (\d+)$", metrics, re.M).group(1)) > 10_000
    assert re.search(r'^hall_gc_pause_seconds_max\{generation="2"\} \d', metrics, re.M)
    assert re.search(r'hall_task_failures_total\{task="workers.tasks.deposits.pay_deposit"\} [1-9]',
                     metrics), metrics[-600:]
    # A bidder may not re-run anything; an operator re-runs it once the balance is there.
    code, data = await api.call("POST", f"/api/admin/jobs/{job['task_id']}/rerun")
    assert code == 403
    await hall.operator.post(f"/api/admin/users/{user['id']}/credit", {"amount": 10_000})
    mark = len(sock.messages)
    answer = await hall.operator.post(f"/api/admin/jobs/{job['task_id']}/rerun")
    assert answer["rerun_of"] == job["task_id"]
    done = await sock.wait_for(lambda m: m.get("type") == "task"
                               and m.get("task_id") == answer["task_id"], start=mark)
    assert done["state"] == "SUCCESS"
    assert (await api.get("/api/me"))["balance"] == 11_000 - 5_000
    rows = await job_rows(hall, lambda r: r and r[0]["state"] == "SUCCESS", user_id=user["id"])
    assert rows[0]["task_id"] == answer["task_id"] and rows[0]["rerun_of"] == job["task_id"]
    # Only failed tasks are run again (the deposit is in force now, so no money moves twice).
    code, data = await hall.operator.call("POST", f"/api/admin/jobs/{answer['task_id']}/rerun")
    assert code == 409 and data["code"] == "conflict"
    code, data = await hall.operator.call("GET", "/api/admin/jobs?state=LOST")
    assert code == 400 and data["code"] == "invalid"
    rerun = (await audit(hall, action="task.rerun"))[-1]
    assert rerun["before"]["task_id"] == job["task_id"] and rerun["after"]["task_id"] == answer["task_id"]
    await sock.close()


async def test_jobs_record_the_time_a_task_waited_in_the_queue(stack, hall):
    """A deposit submitted while no worker takes money tasks waits in the queue;
    its job record says so (queued -> started), as do the jobs API and /metrics."""
    from workerctl import consumers
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=5_000)
    api, user = await hall.bidder(prefix="wait")
    sock = await Socket.connect(stack.ws_url, api.token)
    workers = await consumers(stack, "cancel_consumer", "money")
    assert workers
    try:
        before_ms = int(time.time() * 1000)
        task = await api.post(f"/api/lots/{lot['id']}/deposit", {"scope": "lot", "method": "balance"})
        submitted_ms = int(time.time() * 1000)

        async def queued() -> bool:
            body = (await hall.anon.http.fetch(stack.base + "/metrics")).body.decode()
            return bool(re.search(r'hall_queue_depth\{queue="money"\} [1-9]', body))
        await poll(queued, "the deposit waits in the money queue", 30)
        held_from_ms = int(time.time() * 1000)
    finally:
        await consumers(stack, "add_consumer", "money", workers)
    done = await sock.wait_for(lambda m: m.get("type") == "task" and m.get("task_id") == task["task_id"])
    assert done["state"] == "SUCCESS"
    rows = await job_rows(hall, lambda r: r and r[0]["state"] == "SUCCESS", user_id=user["id"])
    job = rows[0]
    assert job["task_id"] == task["task_id"]
    assert before_ms <= job["queued_at_ms"] <= submitted_ms
    # It waited at least from the moment the test saw it queued until a worker took it.
    assert job["started_at_ms"] - job["queued_at_ms"] == job["wait_ms"]
    assert job["wait_ms"] >= held_from_ms - submitted_ms
    metrics = (await hall.anon.http.fetch(stack.base + "/metrics")).body.decode()
    assert re.search(r'hall_job_queue_wait_seconds_count\{kind="pay_deposit"\} [1-9]', metrics), metrics[-800:]
    assert 'hall_job_queue_wait_seconds_sum{kind="pay_deposit"}' in metrics
    await sock.close()


# The job table as the release before the queue wait had it.
OLD_JOB_TABLE = ("CREATE TABLE job (id {pk}, task_id VARCHAR(64) NOT NULL UNIQUE, "
                 "name VARCHAR(80) NOT NULL, kind VARCHAR(32) NOT NULL, lot_id BIGINT, "
                 "session_id BIGINT, user_id BIGINT, state VARCHAR(12) NOT NULL, "
                 "retries INTEGER NOT NULL DEFAULT 0, error VARCHAR(300), kwargs TEXT, "
                 "started_at_ms BIGINT, finished_at_ms BIGINT, rerun_of VARCHAR(64))")


def test_an_old_database_gains_the_queue_wait_column(tmp_path):
    """`run.py initdb` on a database from before the queue wait adds the column,
    keeping the rows (SQLite here; PostgreSQL in the test below)."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(OLD_JOB_TABLE.format(pk="INTEGER PRIMARY KEY"))
    conn.execute("INSERT INTO job (task_id, name, kind, state) VALUES ('t1', 'n', 'settle_lot', 'SUCCESS')")
    conn.commit()
    conn.close()
    subprocess.run([sys.executable, "run.py", "initdb"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": f"sqlite:///{path}"}, stdout=subprocess.DEVNULL)
    conn = sqlite3.connect(path)
    assert "queued_at_ms" in {row[1] for row in conn.execute("PRAGMA table_info(job)")}
    assert conn.execute("SELECT task_id, queued_at_ms FROM job").fetchall() == [("t1", None)]
    conn.close()


def test_audit_table_is_append_only_on_postgres():
    """The same triggers on PostgreSQL (the multi-node database), from `run.py initdb`;
    and an old job table gains the queue wait column there too."""
    import pg
    from tests.procs import free_port
    if not pg.available():
        pytest.skip("PostgreSQL is not installed")
    import psycopg2
    server = pg.Postgres(free_port()).start()
    try:
        with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
            cur.execute(OLD_JOB_TABLE.format(pk="BIGSERIAL PRIMARY KEY"))  # from an older release
        subprocess.run([sys.executable, "run.py", "initdb"], cwd=ROOT, check=True,
                       env={**os.environ, "DATABASE_URL": server.url}, stdout=subprocess.DEVNULL)
        with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'job'")
            assert "queued_at_ms" in {row[0] for row in cur.fetchall()}  # the migrator added it
        with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO auditentry (at_ms, actor, action, target) "
                        "VALUES (1, 'system', 'session.create', 'session:1') RETURNING id")
            entry = cur.fetchone()[0]
        for sql in ("UPDATE auditentry SET actor = 'x' WHERE id = %s",
                    "DELETE FROM auditentry WHERE id = %s"):
            with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
                with pytest.raises(psycopg2.Error, match="append-only"):
                    cur.execute(sql, (entry,))
        with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT actor FROM auditentry")
            assert cur.fetchall() == [("system",)]
    finally:
        server.remove()


async def test_dashboard_keeps_closed_lots_with_their_result(stack, hall):
    """A hammered lot nobody watches any more stays in the overview, closed, with its price."""
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600)
    api, _ = await hall.bidder()
    sock = await Socket.connect(stack.ws_url, api.token)
    assert (await hall.pay_deposit(api, sock, lot["id"]))["state"] == "SUCCESS"
    await sock.join(lot["id"])
    assert (await sock.bid(lot["id"], 1000))["type"] == "accepted"
    await hall.operator.post(f"/api/admin/lots/{lot['id']}/hammer")
    await sock.close()
    # Once no socket of any hall sits in the room (the halls report their rooms
    # every few seconds), only the session keeps the lot on the dashboard.
    async def room_empty() -> dict | None:
        rooms = {r["lot_id"]: r for r in (await hall.operator.get("/api/admin/overview"))["rooms"]}
        return rooms if rooms.get(lot["id"], {}).get("connections", 0) == 0 else None
    rooms = await poll(room_empty, "the room reported empty", 30)
    assert lot["id"] in rooms, "the closed lot left the dashboard"
    assert rooms[lot["id"]]["status"] in ("closed", "settled") and rooms[lot["id"]]["price"] == 1000
    assert rooms[lot["id"]]["connections"] == 0
