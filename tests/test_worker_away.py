"""While no worker runs, lots still close on time and answers stay consistent.

Bids after the deadline are refused by the bid script on Redis' clock; the
hall runs the close itself (hall/deadlines.py), so the room hears it and the
database row says `closed`; the settlement waits for a worker and follows once,
when one is back. An operator's publish that outlasts its wait says it is
queued (202 and the task), and happens once.
"""
from __future__ import annotations

from conftest import Socket
from test_money import db_rows, user_with_socket
from workerctl import consumers, until


async def test_with_no_worker_a_lot_closes_on_time_and_its_row_follows(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=8, extend_window_s=0, extend_by_s=0)
    lot_id = lot["id"]
    api, user, sock = await user_with_socket(stack, hall)
    assert (await hall.pay_deposit(api, sock, lot_id, scope="lot"))["state"] == "SUCCESS"
    await sock.join(lot_id)
    assert (await sock.bid(lot_id, 1000))["type"] == "accepted"

    lots_workers = await consumers(stack, "cancel_consumer", "lots")  # no worker closes lots
    money_workers = await consumers(stack, "cancel_consumer", "money")  # nor settles them
    assert lots_workers and money_workers
    try:
        # The hall closes it (hall/deadlines.py): the room hears it on time.
        closed = await sock.wait_for(lambda m: m.get("type") == "closed", timeout=30)
        assert closed["result"] == "sold" and closed["price"] == 1000
        snap = await hall.anon.get(f"/api/lots/{lot_id}")
        assert snap["status"] == "closed" and snap["winner"] == snap["leader"]
        late = await sock.bid(lot_id, 1100)
        assert late["type"] == "rejected" and late["code"] == "lot_closed"
        # The database row follows Redis while no worker runs.
        await until(lambda: db_rows(stack, "SELECT status FROM lot WHERE id=?", (lot_id,))
                    == [("closed",)], "the lot's row says closed", 30)
        assert db_rows(stack, 'SELECT COUNT(*) FROM "order" WHERE lot_id=?', (lot_id,)) == [(0,)]
    finally:
        await consumers(stack, "add_consumer", "money", money_workers)
        await consumers(stack, "add_consumer", "lots", lots_workers)
    won = await sock.wait_for(lambda m: m.get("type") == "won" and m.get("lot_id") == lot_id,
                              timeout=60)
    assert won["order"]["amount"] == 1000
    assert db_rows(stack, "SELECT status FROM lot WHERE id=?", (lot_id,)) == [("settled",)]
    assert db_rows(stack, 'SELECT COUNT(*) FROM "order" WHERE lot_id=?', (lot_id,)) == [(1,)]
    await sock.close()


async def test_publish_with_no_worker_says_it_is_queued_and_happens_once(stack, hall):
    session, _ = await hall.session_with_lots(1, ends_in_s=3600)
    op_sock = await Socket.connect(stack.ws_url, hall.operator.token)
    workers = await consumers(stack, "cancel_consumer", "lots")
    assert workers
    try:
        code, body = await hall.operator.call("POST",
                                              f"/api/admin/sessions/{session['id']}/publish", {})
        # Not an error that reads "nothing happened": queued, with the task to follow.
        assert code == 202 and body["status"] == "draft" and body["task_id"]
        state = await hall.operator.get(f"/api/tasks/{body['task_id']}")
        assert state["state"] == "PENDING" and state["kind"] == "publish"
    finally:
        await consumers(stack, "add_consumer", "lots", workers)
    done = await op_sock.wait_for(lambda m: m.get("type") == "task"
                                  and m.get("task_id") == body["task_id"], timeout=30)
    assert done["state"] == "SUCCESS"
    after = await hall.anon.get(f"/api/sessions/{session['id']}")
    assert after["status"] in ("published", "live")
    code, again = await hall.operator.call("POST",
                                           f"/api/admin/sessions/{session['id']}/publish", {})
    assert code == 409 and again["code"] == "conflict"  # a retry cannot publish twice
    await op_sock.close()
