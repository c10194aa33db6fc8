"""Notifications: outbid SMS, closing-soon notices, won / refund SMS.

The hall never queues a task per bid. bid.lua pushes `outbid` over the
loser's sockets itself and appends `kind=outbid uid lot price at` to the
stream `notify:events` (keys.NOTIFY); `drain_events` (beat, every
SWEEP_INTERVAL_S) reads that stream through a consumer group and queues one
`send_sms` task per message that survives the dedupe: at most one outbid SMS
per user per lot per NOTIFY_OUTBID_SMS_EVERY_S, none to users without a phone,
none for lots already closed or events older than OUTBID_MAX_AGE_S.
Entries are acknowledged (and deleted) after their SMS is queued; a drainer
that dies leaves them pending and the next run claims them. The dedupe key is
taken with SET NX, so an entry processed twice still sends once.

`closing_soon` (beat, every SWEEP_INTERVAL_S) looks for live lots whose
deadline (zset keys.DEADLINES, by Redis' clock) is within CLOSING_SOON_S and
notifies the lot's bidders (paid deposits for the lot or its session) and its
watchers: a `closing_soon` message on `user:{id}` and an SMS. The mark is per
(lot, deadline): a soft-close extension gives a new deadline and so a new
notice; the same deadline is never announced twice. SMS for closing soon are
further limited to one per user per lot per CLOSING_SOON_S, so a bidding war
in the last minutes does not text everyone on every extension.

`lot_won` and `deposit_refunded` are called by settlement (workers/settlement.py)
after its transaction commits; they only queue a task and never raise.

Every SMS carries an `out_id` (Alibaba Cloud's OutId); `send` records sent
ids in Redis so a redelivered or duplicate task does not text twice.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Iterable

import settings
from auction import keys
from models import Deposit, User, Watch
from workers import dispatch, lotstate, publish, sms
from workers.publish import client

logger = logging.getLogger(__name__)

CLAIM_IDLE_MS = 30_000
SENT_TTL_S = 7 * 24 * 3600
OUTBID_MAX_AGE_S = 900  # an outbid SMS older than this is pointless

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# -- helpers ---------------------------------------------------------------------

def yuan(fen: int) -> str:
    """150000 -> "1500.00" (template variables are text)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _short(title: str, n: int = 20) -> str:
    return title if len(title) <= n else title[: n - 1] + "…"


def _lot_info(lot_ids: Iterable[int]) -> dict[int, dict]:
    """status, session id, title, deadline of each lot from its Redis hash."""
    ids = list(dict.fromkeys(lot_ids))
    if not ids:
        return {}
    pipe = client().pipeline(transaction=False)
    for lid in ids:
        pipe.hmget(keys.lot(lid), "status", "sid", "info", "deadline")
    out = {}
    for lid, (status, sid, info, deadline) in zip(ids, pipe.execute()):
        try:
            title = json.loads(info or "{}").get("title", "")
        except ValueError:
            title = ""
        out[lid] = {"status": status, "sid": int(sid) if sid else None, "title": title,
                    "deadline": int(deadline) if deadline else None}
    return out


def _phones(user_ids: Iterable[int]) -> dict[int, str]:
    ids = list(set(user_ids))
    if not ids:
        return {}
    rows = User.select(User.id, User.phone).where(User.id.in_(ids) & User.phone.is_null(False))
    return {u.id: u.phone for u in rows if u.phone}


# -- sending ---------------------------------------------------------------------

def send(phone: str, template: str, params: dict, out_id: str) -> dict:
    """Send one SMS unless `out_id` was already sent. Raises sms.SmsUnavailable
    (the task retries with backoff) or sms.SmsError (the task fails).

    The out_id is claimed in Redis before the provider is called, so two
    copies of the same message (a duplicate call, a redelivered task) never
    both reach the provider: the second finds it sent, or retries later while
    the first is in flight (a claim left by a dead worker expires)."""
    r = client()
    key = keys.sms_sent(out_id)
    token = f"sending:{uuid.uuid4().hex}"
    if not r.set(key, token, nx=True, ex=int(settings.SMS_TIMEOUT_S * 3) + 30):
        if (r.get(key) or "").startswith("sending:"):
            raise sms.SmsUnavailable("in_flight", f"{out_id} is being sent by another task")
        return {"out_id": out_id, "skipped": "already sent"}
    provider = sms.get_provider()
    try:
        message_id = provider.send(phone, template, params, out_id)
    except BaseException:
        r.eval(_RELEASE, 1, key, token)
        raise
    r.set(key, f"sent:{message_id}", ex=SENT_TTL_S)
    return {"out_id": out_id, "provider": provider.name, "message_id": message_id}


def send_to_user(user_id: int, template: str, params: dict, out_id: str) -> dict:
    phone = _phones([user_id]).get(int(user_id))
    if not phone:
        return {"out_id": out_id, "skipped": "no phone"}
    return send(phone, template, params, out_id)


# -- outbid: drain notify:events -------------------------------------------------


def _handle(entries: list, stats: dict) -> None:
    """Decide and queue the SMS for a batch of entries, then acknowledge them."""
    entries = [(eid, f) for eid, f in entries]
    if not entries:
        return
    outbids = [f for _eid, f in entries if f and f.get("kind") == "outbid"]
    lots = _lot_info(int(f["lot"]) for f in outbids)
    phones = _phones(int(f["uid"]) for f in outbids)
    r = client()
    now_ms = int(time.time() * 1000)
    max_age_ms = OUTBID_MAX_AGE_S * 1000
    for eid, f in entries:
        if not f or f.get("kind") != "outbid":
            stats["other"] += 1
            continue
        uid, lot_id = int(f["uid"]), int(f["lot"])
        lot = lots.get(lot_id, {})
        phone = phones.get(uid)
        if not phone:
            stats["no_phone"] += 1
        elif lot.get("status") in (None, "closed", "settled"):
            stats["lot_over"] += 1
        elif now_ms - int(f.get("at") or now_ms) > max_age_ms:
            stats["stale"] += 1
        elif not r.set(keys.outbid_sms(uid, lot_id), eid, nx=True,
                       ex=settings.NOTIFY_OUTBID_SMS_EVERY_S):
            stats["deduped"] += 1
        else:
            dispatch.sms(phone, "outbid", {"lot": _short(lot.get("title") or f"#{lot_id}"),
                                        "price": yuan(int(f["price"]))},
                      f"outbid:{lot_id}:{uid}:{eid}")
            stats["queued"] += 1
    ids = [eid for eid, _f in entries]
    publish.ack_and_trim(keys.NOTIFY, keys.NOTIFY_GROUP, ids)


def drain_events(consumer: str, batch: int = 500, max_rounds: int = 20) -> dict:
    """Handle everything waiting in notify:events; returns counts by outcome."""
    r = client()
    token = f"{consumer}:{time.monotonic_ns()}"
    if not r.set(keys.NOTIFY_DRAIN_LOCK, token, nx=True, px=30_000):
        return {"busy": True}
    stats = {"queued": 0, "deduped": 0, "no_phone": 0, "lot_over": 0, "stale": 0, "other": 0}
    try:
        publish.ensure_group(keys.NOTIFY, keys.NOTIFY_GROUP)
        # Entries a dead drainer read but never acknowledged.
        _next, claimed, *_ = r.xautoclaim(keys.NOTIFY, keys.NOTIFY_GROUP, consumer, CLAIM_IDLE_MS,
                                           "0-0", count=batch)
        _handle(claimed, stats)
        # Our own unacknowledged entries (an earlier run of ours failed midway).
        own = r.xreadgroup(keys.NOTIFY_GROUP, consumer, {keys.NOTIFY: "0"}, count=batch)
        if own and own[0][1]:
            _handle(own[0][1], stats)
        for _ in range(max_rounds):
            got = r.xreadgroup(keys.NOTIFY_GROUP, consumer, {keys.NOTIFY: ">"}, count=batch)
            if not got or not got[0][1]:
                break
            _handle(got[0][1], stats)
    finally:
        r.eval(_RELEASE, 1, keys.NOTIFY_DRAIN_LOCK, token)
    return stats


# -- closing soon ----------------------------------------------------------------

def recipients(lot_id: int, session_id: int | None) -> set[int]:
    """Bidders of the lot (a paid deposit for it or its session) and its watchers."""
    cond = (Deposit.lot == lot_id) & (Deposit.scope == "lot")
    if session_id is not None:
        cond = cond | ((Deposit.auction_session == session_id) & (Deposit.scope == "session"))
    users = {d.user_id for d in Deposit.select(Deposit.user).where(
        cond & (Deposit.status == "paid"))}
    users |= {w.user_id for w in Watch.select(Watch.user).where(Watch.lot == lot_id)}
    return users


def notify_closing_soon(lot_id: int, deadline_ms: int, session_id: int | None, title: str,
                        now_ms: int) -> int:
    """Push and text every recipient once for this (lot, deadline)."""
    users = recipients(lot_id, session_id)
    r = client()
    # Marked only now, after the recipients are known: a database error leaves
    # the notice unsent and the next sweep tries again.
    if not r.set(keys.closing_notice(lot_id, deadline_ms), now_ms, nx=True,
                 ex=settings.CLOSING_SOON_S + 3600):
        return 0
    for uid in sorted(users):
        publish.to_user(uid, {"type": "closing_soon", "lot_id": lot_id, "deadline_ms": deadline_ms,
                              "server_time_ms": now_ms, "title": title})
    minutes = max(1, round((deadline_ms - now_ms) / 60000))
    for uid, phone in _phones(users).items():
        if r.set(keys.closing_sms(uid, lot_id), deadline_ms, nx=True,
                 ex=max(1, settings.CLOSING_SOON_S)):
            dispatch.sms(phone, "closing_soon", {"lot": _short(title or f"#{lot_id}"),
                                              "minutes": minutes},
                      f"closing:{lot_id}:{deadline_ms}:{uid}")
    return len(users)


def closing_soon() -> dict:
    """One pass over the deadlines due within CLOSING_SOON_S."""
    r = client()
    now = lotstate.redis_now_ms()
    window_ms = settings.CLOSING_SOON_S * 1000
    due = r.zrangebyscore(keys.DEADLINES, now + 1, now + window_ms, withscores=True)
    due = [(int(m), int(s)) for m, s in due]
    if not due:
        return {"notified": []}
    pipe = r.pipeline(transaction=False)
    for lot_id, deadline in due:
        pipe.exists(keys.closing_notice(lot_id, deadline))
    fresh = [(lid, dl) for (lid, dl), done in zip(due, pipe.execute()) if not done]
    info = _lot_info(lid for lid, _dl in fresh)
    notified = []
    for lot_id, deadline in fresh:
        lot = info.get(lot_id, {})
        # Only live lots, and only the deadline in force (not a stale zset score).
        if lot.get("status") != "live" or lot.get("deadline") != deadline:
            continue
        count = notify_closing_soon(lot_id, deadline, lot.get("sid"), lot.get("title", ""), now)
        notified.append({"lot_id": lot_id, "deadline_ms": deadline, "users": count})
    return {"notified": notified}


# -- settlement hooks --------------------------------------------------------------

def lot_won(user_id: int, lot_id: int, order: Any) -> None:
    """SMS to the winner (settlement already pushes `won` over the sockets).

    `order` is a models.Order or its public() dict. Call after the commit;
    safe to call again for the same lot (one SMS per lot and winner)."""
    try:
        if hasattr(order, "public"):
            order = order.public()
        info = _lot_info([lot_id]).get(lot_id, {})
        pay_by = order.get("pay_by_ms")
        params = {"lot": _short(info.get("title") or f"#{lot_id}"),
                  "amount": yuan(int(order.get("due", order.get("amount", 0)))),
                  "pay_by": time.strftime("%Y-%m-%d %H:%M", time.localtime(pay_by / 1000))
                  if pay_by else ""}
        dispatch.user_sms(int(user_id), "won", params, f"won:{lot_id}:{user_id}")
    except Exception:  # a notification must never break settlement
        logger.exception("could not queue the won SMS for lot %s", lot_id)


def deposit_refunded(user_id: int, amount: int, lot_id: int | None = None,
                     session_id: int | None = None, deposit_id: int | None = None) -> None:
    """SMS that a lot (lot_id) or session (session_id) deposit went back.
    Call after the refund commits; one SMS per deposit (per deposit_id if
    given, else per user and lot/session) however often called."""
    try:
        if lot_id is not None:
            scope, ref = "lot", f"lot:{lot_id}"
            what = _short(_lot_info([lot_id]).get(lot_id, {}).get("title") or f"#{lot_id}")
        else:
            scope, ref, what = "session", f"session:{session_id}", f"#{session_id}"
        out_id = (f"refund:deposit:{deposit_id}" if deposit_id is not None
                  else f"refund:{ref}:{user_id}")
        dispatch.user_sms(int(user_id), "deposit_refunded",
                       {"amount": yuan(int(amount)), "scope": scope, "name": what}, out_id)
    except Exception:
        logger.exception("could not queue the refund SMS for user %s", user_id)
