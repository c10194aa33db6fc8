"""Second-chance offers from the workers' side: passing a forfeited lot on,
the expiry sweep, and telling people (the rules: auction/offers.py).

* After a forfeit (workers/orders.py `forfeit_order`, in its transaction):
  `pass_on_in_transaction` offers the lot to the next bidder.
* After a decline, or an accept that came too late (the hall queues
  `pass_on` by name), and for every offer the sweep finds expired (in the
  expiry's transaction): the lot goes to the next bidder.
* Announced after the commit: `offer` to the new offer's owner's sockets;
  `offer_none_left` to the operators when nobody is left (the lot stays
  unsold), once per lot.

Idempotent and safe with several workers: each offer changes state by a
guarded UPDATE, one pending offer per lot is a unique index, and passing a
lot on locks it (PostgreSQL) or runs in an IMMEDIATE transaction (SQLite).
"""
from __future__ import annotations

import logging

from peewee import IntegrityError

from auction import keys, offers
from models import Lot, Offer, now_ms, on_commit, write_transaction
from workers import publish
from workers.alerts import alert_ops

logger = logging.getLogger(__name__)


def announce(outcome: offers.Next) -> None:
    """Say what passing a lot on did (after the commit). The lot's room learns
    it from the lot's hash (`resale`, auction/snapshot.py): the buyer did not
    pay and the lot is being offered on, or nobody is left and it is unsold."""
    if outcome.kind in ("offer", "none_left"):
        lot_id = outcome.offer.lot_id if outcome.offer is not None else outcome.lot_id
        pipe = publish.client().pipeline()
        # Whoever bought it on an earlier offer forfeited too: no buyer now.
        pipe.hdel(keys.lot(lot_id), "buyer_name", "buyer_price")
        pipe.hset(keys.lot(lot_id), "resale", "offering" if outcome.kind == "offer" else "none")
        pipe.execute()
    if outcome.kind == "offer" and outcome.offer is not None:
        offer = outcome.offer
        lot = Lot.get_by_id(offer.lot_id)
        publish.to_user(offer.user_id, {"type": "offer", **offer.public(),
                                        "lot_title": lot.title})
    elif outcome.kind == "none_left":
        lot = Lot.get_by_id(outcome.lot_id)
        alert_ops("offer_none_left", lot_id=outcome.lot_id, lot_title=lot.title,
                  forfeited_by=outcome.forfeited_by or [])


def pass_on_in_transaction(lot_id: int, now: int) -> offers.Next:
    """Inside the caller's transaction (a forfeit's, an expiry's): offer the
    lot on; announced once that commits."""
    outcome = offers.pass_on(lot_id, now)
    on_commit(lambda: announce(outcome))
    return outcome


def pass_on(lot_id: int) -> dict:
    """Pass a lot on after a decline or an expiry (idempotent)."""
    try:
        with write_transaction():
            outcome = pass_on_in_transaction(lot_id, now_ms())
    except IntegrityError:
        # Another worker made the pending offer at the same moment (PostgreSQL
        # without the lock having been taken first): nothing left to do.
        return {"lot_id": lot_id, "outcome": "nothing"}
    return {"lot_id": lot_id, "outcome": outcome.kind,
            "offer_id": outcome.offer.id if outcome.offer else None}


def sweep(now: int | None = None, limit: int = 100) -> dict:
    """Beat: expire pending offers past their deadline and pass their lots on;
    pass on any lot whose declined or expired offer was not passed on yet (a
    hall that died between the decline and queueing `pass_on`)."""
    now = now if now is not None else now_ms()
    expired = []
    for offer in list(Offer.select().where((Offer.status == offers.PENDING)
                                           & (Offer.expires_ms <= now))
                      .order_by(Offer.expires_ms).limit(limit)):
        try:
            with write_transaction():
                if offers.expire(offer, now):
                    expired.append(offer.id)
                    pass_on_in_transaction(offer.lot_id, now)
        except IntegrityError:
            pass  # another worker passed this lot on at the same moment
    waiting = {o.lot_id for o in Offer.select(Offer.lot).where(
        Offer.status.in_([offers.DECLINED, offers.EXPIRED]) & (Offer.passed_on == 0)
        & (Offer.ended_at_ms <= now - 10_000)).limit(limit)}
    for lot_id in sorted(waiting):
        pass_on(lot_id)
    return {"expired": expired, "passed_on": sorted(waiting)}
