"""A lot that closed but whose settlement was never queued is settled anyway.

The close itself (common.lua) puts the lot in the closed-not-settled set;
only a committed settlement takes it out, and the sweep re-queues what stays
longer than HALL_SETTLE_GRACE_S (5 s in the test stack). Here the lot is
closed straight in Redis, as a hammer whose settle_lot task was lost would
leave it: no task is queued by anyone.
"""
from __future__ import annotations

import json

from auction import engine, keys
from test_money import check_money, db_rows, user_with_socket


async def test_a_close_whose_settlement_was_lost_is_settled_once(stack, hall):
    _, (lot,) = await hall.live_lots(1, ends_in_s=3600, lot_deposit=5_000, start_price=10_000)
    lot_id = lot["id"]
    (w_api, w, w_sock), (l_api, loser, l_sock) = [await user_with_socket(stack, hall)
                                                  for _ in range(2)]
    for api, sock in ((w_api, w_sock), (l_api, l_sock)):
        assert (await hall.pay_deposit(api, sock, lot_id, scope="lot"))["state"] == "SUCCESS"
        await sock.join(lot_id)
    assert (await l_sock.bid(lot_id, 10_000))["type"] == "accepted"
    assert (await w_sock.bid(lot_id, 10_100))["type"] == "accepted"

    r = stack.sync_redis()
    close = r.register_script(engine.CLOSE_LUA)
    closed = json.loads(close(keys=engine.control_keys(lot_id), args=[lot_id, "1", engine.MAXLEN]))
    assert closed["closed"] and closed["result"] == "sold"
    assert r.zscore(keys.UNSETTLED, lot_id) is not None  # written with the close

    won = await w_sock.wait_for(lambda m: m.get("type") == "won", timeout=60)
    assert won["order"]["amount"] == 10_100 and won["order"]["deposit_credited"] == 5_000
    refund = await l_sock.wait_for(lambda m: m.get("type") == "refund", timeout=60)
    assert refund["amount"] == 5_000 and refund["status"] == "done"
    snap = await hall.anon.get(f"/api/lots/{lot_id}")
    assert snap["status"] == "settled"
    assert r.zscore(keys.UNSETTLED, lot_id) is None  # cleared by the committed settlement

    # Once: one order, one refund, one refund entry in the loser's ledger.
    assert db_rows(stack, 'SELECT user_id, amount FROM "order" WHERE lot_id=?', (lot_id,)) == [
        (w["id"], 10_100)]
    assert db_rows(stack, "SELECT COUNT(*) FROM refund r JOIN deposit d ON d.id = r.deposit_id "
                          "WHERE d.lot_id=?", (lot_id,)) == [(1,)]
    assert db_rows(stack, "SELECT COUNT(*) FROM ledgerentry WHERE user_id=? AND kind='refund'",
                   (loser["id"],)) == [(1,)]
    check_money(stack, [w["id"], loser["id"]])
    for sock in (w_sock, l_sock):
        await sock.close()
