"""Paying for a won lot: balance or WeChat Pay, with an optional coupon."""
from __future__ import annotations

import uuid

from models import Coupon, LedgerEntry, Order, Payment, User, db, write_transaction, now_ms
from workers import publish
from workers.errors import Refused


def discount(coupon: Coupon | None, due: int, now: int) -> int:
    if coupon is None:
        return 0
    if coupon.used_at_ms is not None:
        raise Refused("conflict", "this coupon has been used")
    if coupon.expires_at_ms <= now:
        raise Refused("conflict", "this coupon has expired")
    if due < coupon.min_spend:
        raise Refused("conflict", f"this coupon needs a spend of {coupon.min_spend} fen")
    off = coupon.value if coupon.kind == "fixed" else due * coupon.value // 100
    return min(off, due)


def pay_order(user_id: int, order_id: int, method: str, coupon_id: int | None,
              task_id: str) -> dict:
    order = Order.get_or_none(Order.id == order_id)
    if order is None or order.user_id != user_id:
        raise Refused("not_found", "no such order")
    if order.status == "paid":
        raise Refused("already_paid", "this order is paid")
    if order.status != "unpaid":
        raise Refused("conflict", f"this order is {order.status}")
    coupon = None
    if coupon_id is not None:
        coupon = Coupon.get_or_none(Coupon.id == coupon_id)
        if coupon is None or coupon.user_id != user_id:
            raise Refused("not_found", "no such coupon")
    now = now_ms()
    off = discount(coupon, order.due, now)
    to_pay = order.due - off
    if method == "wechat":
        from workers.wechatpay import WeChatPayClient, WeChatPayConfig
        out_trade_no = f"O{uuid.uuid4().hex[:30]}"
        Payment.create(user=user_id, order=order_id, method="wechat", amount=to_pay,
                       out_trade_no=out_trade_no)
        prepay = WeChatPayClient(WeChatPayConfig.from_settings()).jsapi_prepay(
            out_trade_no, f"拍品订单 {order_id}", to_pay, openid=f"openid-{user_id}")
        return {"status": "awaiting_payment", "out_trade_no": out_trade_no, "prepay": prepay}
    with write_transaction():
        if coupon is not None:
            used = Coupon.update(used_at_ms=now).where(
                (Coupon.id == coupon.id) & Coupon.used_at_ms.is_null()).execute()
            if not used:
                raise Refused("conflict", "this coupon has been used")
        debited = User.update(balance=User.balance - to_pay).where(
            (User.id == user_id) & (User.balance >= to_pay)).execute()
        if not debited:
            raise Refused("insufficient_balance", f"this order needs {to_pay} fen")
        paid = Order.update(status="paid", paid_at_ms=now, coupon=coupon_id).where(
            (Order.id == order_id) & (Order.status == "unpaid")).execute()
        if not paid:
            raise Refused("already_paid", "this order is paid")
        balance = User.get_by_id(user_id).balance
        LedgerEntry.create(user=user_id, amount=-to_pay, balance_after=balance, kind="order",
                           ref=f"order:{order_id}", memo=f"order {order_id}")
    publish.to_user(user_id, {"type": "order", "order": Order.get_by_id(order_id).public()})
    return {"status": "paid", "order_id": order_id, "paid": to_pay, "balance": balance}


def order_paid_by_wechat(payment: Payment) -> None:
    Order.update(status="paid", paid_at_ms=now_ms()).where(
        (Order.id == payment.order_id) & (Order.status == "unpaid")).execute()
    publish.to_user(payment.user_id, {"type": "order",
                                      "order": Order.get_by_id(payment.order_id).public()})
