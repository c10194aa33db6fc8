"""Paying for a won lot (balance or WeChat Pay, optional coupon) and 悔拍.

* Balance: one transaction re-reads the order, uses the coupon, debits the
  balance, marks the order paid and writes the `order:{id}` ledger entry
  (unique: an order is paid from the balance once).
* WeChat Pay: one transaction reserves the coupon for this order and records
  the Payment (out_trade_no derived from the task id, so a redelivered task
  asks for the same prepay); the order is paid when the signed notification
  arrives (workers/payments.py dispatches it to `wechat_paid` here). Each
  WeChat attempt is its own trade; money from a second one, or money that
  arrives once the order is paid another way or forfeited, is refunded where
  it came from (workers/refunds.py `refund_payment_in_transaction`).
* Coupons (优惠券): the rules are auction/coupons.py.
* Forfeiture (悔拍): an order still unpaid after `pay_by_ms` becomes
  `forfeited`, the deposits credited to it become `forfeited` (kept, not
  refunded), its owner gets an `order` message and the operators an alert
  (workers/alerts.py); in the same transaction the lot is offered to the next
  bidder (a second-chance offer, workers/offers.py).
"""
from __future__ import annotations

import logging

from peewee import IntegrityError

import settings
from auction import audit, keys, ledger
from auction.coupons import coupon_problem, discount
from auction.errors import Refused
from models import (
    Coupon,
    Deposit,
    LedgerEntry,
    Order,
    Payment,
    User,
    now_ms,
    on_commit,
    write_transaction,
)
from workers import gateway, offers, publish, refunds
from workers.alerts import alert_ops

logger = logging.getLogger(__name__)


def _check_order(order: Order | None, user_id: int) -> Order:
    if order is None or order.user_id != user_id:
        raise Refused("not_found", "no such order")
    if order.status == "paid":
        raise Refused("already_paid", "this order is paid")
    if order.status != "unpaid":
        raise Refused("conflict", f"this order is {order.status}")
    return order


def _coupon(coupon_id: int | None, user_id: int, order: Order, now: int) -> Coupon | None:
    if coupon_id is None:
        return None
    coupon = Coupon.get_or_none(Coupon.id == coupon_id)
    problem = coupon_problem(coupon, user_id, order, now)
    if problem:
        raise Refused(*problem)
    return coupon


def _use_coupon(coupon: Coupon | None, order: Order, now: int) -> None:
    """Mark the coupon used (by this order: single use across orders), in the
    caller's transaction; Refused("conflict") if another order took it."""
    if coupon is None:
        return
    used = Coupon.update(used_at_ms=now).where(
        (Coupon.id == coupon.id) & (Coupon.used_at_ms.is_null()
                                    | (Coupon.id == order.coupon_id))).execute()
    if not used:
        raise Refused("conflict", "this coupon has been used")


def pay_order(user_id: int, order_id: int, method: str, coupon_id: int | None,
              task_id: str, scene: str | None = None, client_ip: str | None = None,
              app: str | None = None) -> dict:
    """Pay a won lot; WeChat in `scene` (jsapi by default; workers/gateway.py)."""
    order = Order.get_or_none(Order.id == order_id)
    if order is not None and order.user_id == user_id and order.status == "paid":
        same = _paid_by_task(order_id, task_id)
        if same is not None:
            return same
    _check_order(order, user_id)
    if method == "wechat":
        return _start_wechat(user_id, order, coupon_id, task_id,
                             gateway.payer(user_id, scene, client_ip, app))
    try:
        return _pay_by_balance(user_id, order_id, coupon_id, task_id)
    except Refused as exc:
        # A copy of this same task (redelivered, or submitted again by the
        # hall's outbox) that ran at the same moment paid it: the same answer.
        same = _paid_by_task(order_id, task_id) if exc.code == "already_paid" else None
        if same is None:
            raise
        return same


def _paid_by_task(order_id: int, task_id: str) -> dict | None:
    """The answer of the run of task `task_id` that paid this order, if one did."""
    entry = LedgerEntry.get_or_none(LedgerEntry.ref == f"order:{order_id}")
    if entry is not None and task_id in entry.memo:
        return {"status": "paid", "order_id": order_id, "paid": -entry.amount,
                "balance": entry.balance_after}
    return None


def _pay_by_balance(user_id: int, order_id: int, coupon_id: int | None, task_id: str) -> dict:
    now = now_ms()
    with write_transaction():
        # Re-read inside the write lock: a session deposit may have just been
        # credited, or another payment may have won the race.
        order = _check_order(Order.get_or_none(Order.id == order_id), user_id)
        coupon = _coupon(coupon_id, user_id, order, now)
        to_pay = order.due - discount(coupon, order.due)
        _use_coupon(coupon, order, now)
        # A coupon may cover everything: the payment is still one ledger entry
        # (of 0), so a redelivered task finds it and answers the same.
        balance = ledger.debit(user_id, to_pay, kind="order", ref=f"order:{order_id}",
                               memo=f"order {order_id} (task {task_id})",
                               short=f"this order needs {to_pay} fen")
        paid = Order.update(status="paid", paid_at_ms=now, coupon=coupon_id).where(
            (Order.id == order_id) & (Order.status == "unpaid")).execute()
        if not paid:
            raise Refused("already_paid", "this order is paid")
        on_commit(lambda: _announce(user_id, order_id))
    return {"status": "paid", "order_id": order_id, "paid": to_pay, "balance": balance}


def _announce(user_id: int, order_id: int) -> None:
    publish.to_user(user_id, {"type": "order", "order": Order.get_by_id(order_id).public()})


def _start_wechat(user_id: int, order: Order, coupon_id: int | None, task_id: str,
                  who: gateway.Payer) -> dict:
    client = gateway.wechat_client()  # configured, or refused with nothing written
    out_trade_no = gateway.trade_no(gateway.ORDER, task_id)
    existing = Payment.get_or_none(Payment.out_trade_no == out_trade_no)
    if existing is None:
        now = now_ms()
        try:
            with write_transaction():
                order = _check_order(Order.get_or_none(Order.id == order.id), user_id)
                coupon = _coupon(coupon_id, user_id, order, now)
                to_pay = order.due - discount(coupon, order.due)
                if to_pay <= 0:
                    raise _FreeOrder()
                if coupon is not None:
                    _use_coupon(coupon, order, now)  # reserved for this order
                    Order.update(coupon=coupon.id).where(Order.id == order.id).execute()
                existing = Payment.create(user=user_id, order=order.id, method="wechat",
                                          amount=to_pay, out_trade_no=out_trade_no,
                                          scene=who.scene)
        except _FreeOrder:
            # Nothing left to pay after the coupon: no gateway involved.
            return pay_order(user_id, order.id, "balance", coupon_id, task_id)
        except IntegrityError:
            existing = Payment.get(Payment.out_trade_no == out_trade_no)
    answer = gateway.prepay(client, who, out_trade_no, f"拍品订单 {order.id}", existing.amount)
    return {"status": "awaiting_payment", "out_trade_no": out_trade_no,
            "amount": existing.amount, **answer}


class _FreeOrder(Exception):
    pass


def wechat_paid(payment: Payment, transaction_id: str) -> dict:
    """A verified, successful WeChat payment of an order: the order is paid, once.

    Money that arrives for an order that no longer wants it (paid another way
    or by another trade: `duplicate`; forfeited: `too_late`) is recorded and
    refunded where it came from in the same transaction; the operators are
    told (workers/refunds.py)."""
    duplicate = None
    with write_transaction():
        changed = bool(Payment.update(status="paid", transaction_id=transaction_id).where(
            (Payment.id == payment.id) & (Payment.status == "pending")).execute())
        if changed:
            audit.gateway_money("order", payment.user_id, payment.amount, method="wechat",
                                order_id=payment.order_id, out_trade_no=payment.out_trade_no,
                                transaction_id=transaction_id)
        paid = changed and bool(Order.update(status="paid", paid_at_ms=now_ms()).where(
            (Order.id == payment.order_id) & (Order.status == "unpaid")).execute())
        if paid:
            on_commit(lambda: _announce(payment.user_id, payment.order_id))
        elif changed:
            status = Order.get_by_id(payment.order_id).status
            duplicate = refunds.refund_payment_in_transaction(
                payment, "duplicate" if status == "paid" else "too_late")
    return {"changed": changed, "late_refund": False, "duplicate": duplicate}


def forfeit_overdue(now: int | None = None, limit: int = 100) -> list[int]:
    """悔拍: forfeit every unpaid order past its pay_by_ms (the money sweep)."""
    now = now if now is not None else now_ms()
    due = [o.id for o in Order.select(Order.id).where(
        (Order.status == "unpaid") & (Order.pay_by_ms < now)).order_by(Order.id).limit(limit)]
    return [oid for oid in due if forfeit_order(oid, now)]


def forfeit_order(order_id: int, now: int) -> bool:
    with write_transaction():
        moved = Order.update(status="forfeited").where(
            (Order.id == order_id) & (Order.status == "unpaid")
            & (Order.pay_by_ms < now)).execute()
        if not moved:
            return False
        Deposit.update(status="forfeited").where(
            (Deposit.credited_to == order_id) & (Deposit.status == "credited")).execute()
        order = Order.get_by_id(order_id)
        if order.deposit_credited:
            audit.gateway_money("forfeit", order.user_id, order.deposit_credited,
                                order_id=order_id, lot_id=order.lot_id)
        strikes, banned = _strike(order)
        # A second chance: the lot goes to the next highest other bidder.
        offers.pass_on_in_transaction(order.lot_id, now)
    order = Order.get_by_id(order_id)
    deposits = [d.id for d in Deposit.select(Deposit.id).where(Deposit.credited_to == order_id)]
    publish.to_user(order.user_id, {"type": "order", "order": order.public(),
                                    "forfeited_deposit": order.deposit_credited})
    alert_ops("order_forfeited", order_id=order_id, user_id=order.user_id, lot_id=order.lot_id,
              amount=order.amount, deposit_forfeited=order.deposit_credited,
              deposit_ids=deposits, pay_by_ms=order.pay_by_ms, strikes=strikes, banned=banned)
    return True


def _strike(order: Order) -> tuple[int, bool]:
    """A forfeited order is a strike against its buyer; at HALL_STRIKES_TO_BAN
    the buyer is banned (no deposits, no bids) until an operator unbans them.
    In the forfeiture's transaction, with its audit entries; the Redis set the
    bid path reads is updated once that commits. (strikes now, banned now)."""
    user = User.get_by_id(order.user_id)
    strikes = user.strikes + 1
    ban = (strikes >= settings.STRIKES_TO_BAN and user.status != "banned"
           and user.role != "operator")
    changes: dict = {"strikes": strikes}
    if ban:
        changes.update(status="banned", ban_reason=f"{strikes} forfeited orders (悔拍)")
    User.update(**changes).where(User.id == user.id).execute()
    audit.record("user.strike", f"user:{user.id}", before={"strikes": user.strikes},
                 after={"strikes": strikes, "order_id": order.id})
    if ban:
        audit.record("user.ban", f"user:{user.id}",
                     before={"status": user.status, "ban_reason": user.ban_reason},
                     after={"status": "banned", "reason": changes["ban_reason"]})
        on_commit(lambda: publish.client().sadd(keys.BANNED_USERS, user.id))
    return strikes, ban
