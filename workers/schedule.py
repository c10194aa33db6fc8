"""定时发布 / 定时拍卖 / countdown expiry, driven by beat every second.

Deadlines live in a Redis sorted set, not in long Celery ETAs (an unacked
ETA task is redelivered after the visibility timeout and lives in worker
memory; docs/architecture.md, "Known traps"): the
sweep closes every lot whose deadline has passed by Redis' clock, and for
lots due within the next sweep interval it queues a short-ETA close so a
lot closes on time rather than up to a second late. Closing is idempotent
and re-checks the deadline, so a late, duplicate or early close is harmless.
"""
from __future__ import annotations

import logging
from typing import Callable

import settings
from auction import keys
from models import AuctionSession, Bid, Lot, PreemptionHolder, User, now_ms, write_transaction
from workers import lotstate
from workers.publish import client

logger = logging.getLogger(__name__)



def publish_session(session_id: int) -> dict:
    """Draft -> published: lots become `scheduled` (visible, deposits open)."""
    session = AuctionSession.get_or_none(AuctionSession.id == session_id)
    if session is None:
        return {"error": "not_found"}
    if session.status == "draft":
        with write_transaction():
            AuctionSession.update(status="published", published_at_ms=now_ms()).where(
                (AuctionSession.id == session_id) & (AuctionSession.status == "draft")).execute()
            Lot.update(status="scheduled").where(
                (Lot.auction_session == session_id) & (Lot.status == "draft")).execute()
            if session.stagger_s:
                stagger_deadlines(session_id, session.stagger_s)
        session = AuctionSession.get_by_id(session_id)
    lots = list(Lot.select().where(Lot.auction_session == session_id).order_by(Lot.position))
    for lot in lots:
        last = (Bid.select(Bid, User).join(User).where(Bid.lot == lot.id)
                .order_by(Bid.seq.desc()).first())
        holders = list(PreemptionHolder.select(PreemptionHolder.user, PreemptionHolder.rank)
                       .where(PreemptionHolder.lot == lot.id).tuples())
        lotstate.load(lot, session, "scheduled", last, holders)
    r = client()
    r.zrem(keys.PUBLISH_AT, session_id)
    start = session.starts_at_ms or 0
    if start <= lotstate.redis_now_ms():
        start_session(session_id)
    else:
        r.zadd(keys.START_AT, {session_id: start})
    return {"session_id": session_id, "status": AuctionSession.get_by_id(session_id).status,
            "lots": len(lots)}


def stagger_deadlines(session_id: int, stagger_s: int) -> None:
    """Lot N closes `stagger_s` after lot N-1, so a session does not end all at once."""
    lots = list(Lot.select().where(Lot.auction_session == session_id).order_by(Lot.position, Lot.id))
    if not lots:
        return
    first = lots[0].ends_at_ms
    for i, lot in enumerate(lots):
        Lot.update(ends_at_ms=first + i * stagger_s * 1000).where(Lot.id == lot.id).execute()


def start_session(session_id: int) -> dict:
    """Published -> live: every scheduled lot opens for bids."""
    session = AuctionSession.get_or_none(AuctionSession.id == session_id)
    if session is None or session.status not in ("published", "live"):
        return {"error": "not_startable"}
    # The session is live before its first lot opens, so whoever hears a lot
    # go live and looks at the session sees it live too. Should this run stop
    # before the lots open, the session stays in START_AT and the sweep runs
    # it again (opening an open lot changes nothing).
    with write_transaction():
        AuctionSession.update(status="live").where(
            (AuctionSession.id == session_id) & (AuctionSession.status == "published")).execute()
    opened, expired = [], []
    for lot in Lot.select().where(Lot.auction_session == session_id).order_by(Lot.position):
        result = lotstate.control(lot.id, "open")
        if result.get("status") == "live":
            opened.append(lot.id)
        elif result.get("reason") == "deadline passed":
            expired.append(lot.id)
    if opened:
        with write_transaction():
            Lot.update(status="live").where(Lot.id.in_(opened)).execute()
    client().zrem(keys.START_AT, session_id)
    return {"session_id": session_id, "opened": opened, "expired": expired}


def close_due(on_closed: Callable[[list[int]], None]) -> list[int]:
    """Close every lot whose deadline has passed, in one Lua call; settle them."""
    closed = lotstate.close_due()
    if closed:
        on_closed(closed)
    return closed


def sweep(on_closed: Callable[[list[int]], None],
          arm: Callable[[int, float], None] | None = None) -> dict:
    """One pass: scheduled publishes and starts, due lots, and the short-ETA
    closes for deadlines that fall before the next pass."""
    r = client()
    # Beat starts a pass every interval even if the last one is still running;
    # overlapping passes would only fight over the same lots.
    if not r.set(keys.SWEEP_LOCK, 1, nx=True, px=max(int(settings.SWEEP_INTERVAL_S * 4000), 2000)):
        return {"skipped": True}
    try:
        now = lotstate.redis_now_ms()
        published = [int(s) for s in r.zrangebyscore(keys.PUBLISH_AT, "-inf", now)]
        for sid in published:
            publish_session(sid)
        started = [int(s) for s in r.zrangebyscore(keys.START_AT, "-inf", now)]
        for sid in started:
            start_session(sid)
        closed = close_due(on_closed)
        requeued = requeue_unsettled(now, on_closed)
        if arm is not None:
            # One timer per distinct deadline (200 lots ending together: one
            # task), armed before the next pass could see the deadline.
            horizon = now + int(settings.SWEEP_INTERVAL_S * 1000) * 2 + 200
            upcoming = {int(score) for _m, score in r.zrangebyscore(
                keys.DEADLINES, f"({now}", horizon, withscores=True)}
            for deadline in sorted(upcoming):
                if r.set(keys.closing_timer(deadline), 1, nx=True, ex=120):
                    arm(deadline, (deadline - now) / 1000.0)
        return {"published": published, "started": started, "closed": closed,
                "requeued": requeued}
    finally:
        r.delete(keys.SWEEP_LOCK)


def requeue_unsettled(now: int, on_closed: Callable[[list[int]], None]) -> list[int]:
    """Lots closed more than SETTLE_GRACE_S ago and still not settled (their
    settlement was never queued, lost with a broker, or failed for good):
    queue their settlement again, at most once per grace period each.
    Settlement is idempotent, so a late original changes nothing twice."""
    r = client()
    grace_ms = int(settings.SETTLE_GRACE_S * 1000)
    stale = [int(x) for x in r.zrangebyscore(keys.UNSETTLED, "-inf", now - grace_ms,
                                             start=0, num=200)]
    due = [lot_id for lot_id in stale
           if r.set(keys.settle_requeued(lot_id), 1, nx=True, px=grace_ms)]
    if due:
        logger.warning("re-queueing the settlement of closed lots %s", due)
        on_closed(due)
    return due


def close_at(deadline_ms: int, on_closed: Callable[[list[int]], None],
             arm: Callable[[int, float], None]) -> list[int]:
    """A short-ETA timer for one deadline: close what is due; if the timer fired
    early (clocks differ between hosts), arm it again for the time left."""
    closed = close_due(on_closed)
    now = lotstate.redis_now_ms()
    if now < deadline_ms and client().zcount(keys.DEADLINES, deadline_ms, deadline_ms):
        arm(deadline_ms, (deadline_ms - now) / 1000.0)
    return closed
