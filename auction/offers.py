"""Second-chance offers (API.md, "Trust"): the rules, in the database.

When an order is forfeited (悔拍), the lot is offered to the bidder with the
next highest bid of another user: their own best bid on the lot (the `bid`
table), at or above the reserve, leaving out everyone who held an order or an
offer for this lot before, and banned users. Ties go to who reached the amount
first (lower `seq`), as in the bid engine. An offer stays open for
`HALL_OFFER_WINDOW_S`; declined or expired, the lot passes to the next one;
accepted, it becomes an unpaid order paid like any other (and a forfeit of
that order passes the lot on again). When nobody is left the lot stays unsold.

Every function here runs inside the caller's `models.write_transaction()`
(each state change is audited in it, target `lot:{id}`) and touches nothing
outside the database: the shells announce what changed (workers/offers.py
pushes `offer` and alerts the operators; hall/handlers/offers.py answers).

The order an offer becomes has no deposit credited: the bidder's lot deposit
was refunded when the lot settled. A session deposit still held when the
session ends is credited to the buyer's first unpaid order of the session,
which may be this one (workers/settlement.py), as for any order.
"""
from __future__ import annotations

from dataclasses import dataclass

from peewee import IntegrityError

import settings
from auction import audit
from auction.errors import Refused
from models import AuditEntry, Bid, Lot, Offer, Order, User, db

PENDING, ACCEPTED, DECLINED, EXPIRED = "pending", "accepted", "declined", "expired"


@dataclass
class Next:
    """What passing a lot on did: `offer` (a new pending offer), `none_left`
    (nobody to offer it to: the lot stays unsold, say so once), or `nothing`
    (an offer is pending or an order is live already, or it was said before)."""
    kind: str
    lot_id: int
    offer: Offer | None = None
    forfeited_by: list[int] | None = None


def _lock_lot(lot_id: int) -> None:
    """Serialise passing one lot on: SQLite's write transactions already are
    (IMMEDIATE); on PostgreSQL the lot's row is locked."""
    if getattr(db.obj, "for_update", False):
        list(Lot.select(Lot.id).where(Lot.id == lot_id).for_update())


def runner_up(lot_id: int) -> tuple[int, int] | None:
    """(user id, amount) of the next bidder to offer the lot to, or None."""
    lot = Lot.get_by_id(lot_id)
    excluded = {o.user_id for o in Order.select(Order.user).where(Order.lot == lot_id)}
    excluded |= {o.user_id for o in Offer.select(Offer.user).where(Offer.lot == lot_id)}
    best: dict[int, tuple[int, int]] = {}  # user -> (amount, seq it was first reached)
    for bid in Bid.select(Bid.user, Bid.amount, Bid.seq).where(Bid.lot == lot_id).order_by(Bid.seq):
        if bid.user_id in excluded:
            continue
        have = best.get(bid.user_id)
        if have is None or bid.amount > have[0]:
            best[bid.user_id] = (bid.amount, bid.seq)
    floor = lot.reserve_price or 0
    ranked = sorted(((amount, seq, uid) for uid, (amount, seq) in best.items() if amount >= floor),
                    key=lambda r: (-r[0], r[1]))
    if not ranked:
        return None
    banned = {u.id for u in User.select(User.id).where(
        User.id.in_([uid for _, _, uid in ranked]) & (User.status == "banned"))}
    for amount, _, uid in ranked:
        if uid not in banned:
            return uid, amount
    return None


def pass_on(lot_id: int, now: int) -> Next:
    """Offer the lot to the next bidder unless an offer is pending or an order
    is live; in the caller's transaction. Idempotent: a second call finds the
    pending offer (or the `offer.none_left` entry) and does nothing."""
    _lock_lot(lot_id)
    ended = Offer.update(passed_on=1).where(
        (Offer.lot == lot_id) & Offer.status.in_([DECLINED, EXPIRED]) & (Offer.passed_on == 0))
    if Offer.select().where((Offer.lot == lot_id) & (Offer.status == PENDING)).exists():
        ended.execute()
        return Next("nothing", lot_id)
    if Order.select().where((Order.lot == lot_id) & (Order.status != "forfeited")).exists():
        ended.execute()
        return Next("nothing", lot_id)
    ended.execute()
    found = runner_up(lot_id)
    if found is None:
        target = f"lot:{lot_id}"
        if AuditEntry.select().where((AuditEntry.action == "offer.none_left")
                                     & (AuditEntry.target == target)).exists():
            return Next("nothing", lot_id)
        forfeited = [o.user_id for o in Order.select(Order.user).where(
            (Order.lot == lot_id) & (Order.status == "forfeited")).order_by(Order.id)]
        offered = Offer.select().where(Offer.lot == lot_id).count()
        audit.record("offer.none_left", target,
                     after={"offers": offered, "forfeited_by": forfeited})
        return Next("none_left", lot_id, forfeited_by=forfeited)
    user_id, amount = found
    offer = Offer.create(lot=lot_id, user=user_id, amount=amount, status=PENDING,
                         expires_ms=now + settings.OFFER_WINDOW_S * 1000, created_at_ms=now)
    audit.record("offer.create", f"lot:{lot_id}", after={
        "offer_id": offer.id, "user_id": user_id, "amount": amount,
        "expires_ms": offer.expires_ms})
    return Next("offer", lot_id, offer=offer)


def _mine(user_id: int, offer_id: int) -> Offer:
    offer = Offer.get_or_none(Offer.id == offer_id)
    if offer is None or offer.user_id != user_id:
        raise Refused("not_found", "no such offer")
    return offer


def expire(offer: Offer, now: int) -> bool:
    """A pending offer past its deadline becomes `expired` (once); in the
    caller's transaction. The lot is then passed on (`pass_on`)."""
    moved = Offer.update(status=EXPIRED, ended_at_ms=now).where(
        (Offer.id == offer.id) & (Offer.status == PENDING) & (Offer.expires_ms <= now)).execute()
    if moved:
        audit.record("offer.expire", f"lot:{offer.lot_id}", before={"status": PENDING},
                     after={"offer_id": offer.id, "user_id": offer.user_id,
                            "status": EXPIRED, "expires_ms": offer.expires_ms})
    return bool(moved)


@dataclass
class Accepted:
    """`order` (the offer's order; `created` when this call made it), or
    `expired` (the deadline had passed: the offer is now expired, pass it on)."""
    order: Order | None
    created: bool = False
    expired: bool = False


def accept(user_id: int, offer_id: int, now: int) -> Accepted:
    """Accept an offer: the unpaid order at the offer's amount (plus the lot's
    buyer's premium), due within HALL_ORDER_PAY_WINDOW_S. Accepting again
    answers the same order. Refused: `not_found` (not this user's),
    `conflict` (declined), `banned`; an expired one answers `expired`."""
    offer = _mine(user_id, offer_id)
    if offer.status == ACCEPTED:
        return Accepted(Order.get_by_id(offer.order_id))
    if offer.status == DECLINED:
        raise Refused("conflict", "this offer was declined")
    if offer.status == EXPIRED:
        return Accepted(None, expired=True)
    if offer.expires_ms <= now:
        expire(offer, now)
        return Accepted(None, expired=True)
    user = User.get_by_id(user_id)
    if user.status == "banned":
        raise Refused("banned", "this account is banned and may not accept offers")
    lot = Lot.get_by_id(offer.lot_id)
    premium = offer.amount * lot.buyer_premium_bp // 10000
    try:
        with db.obj.atomic():  # a savepoint: the unique index must not abort the transaction
            order = Order.create(user=user_id, lot=lot.id, amount=offer.amount, premium=premium,
                                 deposit_credited=0, due=offer.amount + premium,
                                 pay_by_ms=now + settings.ORDER_PAY_WINDOW_S * 1000,
                                 created_at_ms=now)
    except IntegrityError:
        raise Refused("conflict", "this lot has a buyer already")
    moved = Offer.update(status=ACCEPTED, order=order.id, ended_at_ms=now).where(
        (Offer.id == offer.id) & (Offer.status == PENDING)).execute()
    if not moved:
        raise Refused("conflict", "this offer has just changed; look again")
    audit.record("offer.accept", f"lot:{lot.id}", before={"status": PENDING},
                 after={"offer_id": offer.id, "user_id": user_id, "status": ACCEPTED,
                        "order_id": order.id, "amount": offer.amount, "premium": premium,
                        "due": order.due})
    return Accepted(order, created=True)


def decline(user_id: int, offer_id: int, now: int) -> Offer:
    """Decline a pending offer (declining again is the same answer). Refused:
    `not_found`, `conflict` (accepted), `offer_expired`. The lot is then
    passed on (`pass_on`)."""
    offer = _mine(user_id, offer_id)
    if offer.status == DECLINED:
        return offer
    if offer.status == ACCEPTED:
        raise Refused("conflict", "this offer was accepted")
    if offer.status == EXPIRED or offer.expires_ms <= now:
        raise Refused("offer_expired", "this offer has expired")
    moved = Offer.update(status=DECLINED, ended_at_ms=now).where(
        (Offer.id == offer.id) & (Offer.status == PENDING)).execute()
    if not moved:
        raise Refused("conflict", "this offer has just changed; look again")
    audit.record("offer.decline", f"lot:{offer.lot_id}", before={"status": PENDING},
                 after={"offer_id": offer.id, "user_id": user_id, "status": DECLINED})
    return Offer.get_by_id(offer.id)
