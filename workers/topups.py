"""充值: putting money into a balance by WeChat Pay.

The same path as a WeChat deposit (workers/deposits.py), with a balance
credit at its end instead of a deposit in force:

1. `start_topup` (the task the hall queues for POST /api/me/topups) writes a
   `TopUp` and its `Payment` (neither deposit nor order) in one transaction
   and answers the prepay of the payer's scene (native QR code, h5 cashier,
   jsapi). The trade number derives from the task id, so a redelivered task
   asks the gateway for the same trade again.
2. The signed notification (hall/handlers/pay.py) or, when none comes, the
   gateway's query (`workers/payments.py reconcile_due`) reaches
   `wechat_paid` here through `workers/payments.py wechat_paid`.
3. `wechat_paid`: one transaction marks the payment paid (a guarded
   `UPDATE ... WHERE status = 'pending'`), the top-up paid, and credits the
   balance through the ledger (`auction/ledger.py`, ref `topup:{id}`,
   unique, with its `money.topup` audit entry). A replayed or redelivered
   notification, or the query racing the notification, finds the payment
   paid already and credits nothing; the owner is told again (`topup`).

A top-up trade is never closed by us (every paid top-up is money its payer
wanted in the balance), so there is no money nothing wants here.
"""
from __future__ import annotations

import logging

from peewee import IntegrityError

import settings
from auction import ledger
from auction.errors import Refused
from models import Payment, TopUp, User, now_ms, on_commit, write_transaction
from workers import gateway, publish

logger = logging.getLogger(__name__)

DESCRIPTION = "账户充值"


def check_amount(amount: object) -> int:
    """Integer fen, 1 to HALL_TOPUP_MAX_FEN; Refused("invalid") otherwise."""
    if type(amount) is not int or not 0 < amount <= settings.TOPUP_MAX_FEN:
        raise Refused("invalid", f"amount must be an integer number of fen from 1 to "
                                 f"{settings.TOPUP_MAX_FEN}")
    return amount


def start_topup(user_id: int, amount: int, task_id: str, scene: str | None = None,
                client_ip: str | None = None, app: str | None = None) -> dict:
    """Open the top-up's WeChat trade; its prepay in the payer's scene."""
    check_amount(amount)
    who = gateway.payer(user_id, scene, client_ip, app)  # refused before writing
    client = gateway.wechat_client()  # configured, or refused with nothing written
    out_trade_no = gateway.trade_no(gateway.TOPUP, task_id)
    topup = TopUp.get_or_none(TopUp.task_id == task_id)
    if topup is None:
        try:
            with write_transaction():
                topup = TopUp.create(user=user_id, amount=amount, task_id=task_id,
                                     out_trade_no=out_trade_no, scene=who.scene)
                Payment.create(user=user_id, method="wechat", amount=amount,
                               out_trade_no=out_trade_no, scene=who.scene)
        except IntegrityError:  # a copy of this task got there first
            topup = TopUp.get(TopUp.task_id == task_id)
    if topup.status == "paid":  # a redelivered task after the payment: nothing to pay
        return {"status": "paid", "topup": topup.public(), "amount": topup.amount}
    answer = gateway.prepay(client, who, topup.out_trade_no, DESCRIPTION, topup.amount)
    return {"status": "awaiting_payment", "topup_id": topup.id,
            "out_trade_no": topup.out_trade_no, "amount": topup.amount, **answer}


def _announce(topup_id: int, balance: int | None = None) -> None:
    """`topup` to the owner's sockets, with the balance (as the credit left it,
    or as it is now when told again)."""
    topup = TopUp.get_by_id(topup_id)
    if balance is None:
        balance = User.get_by_id(topup.user_id).balance
    publish.to_user(topup.user_id, {"type": "topup", "topup": topup.public(), "balance": balance})


def wechat_paid(payment: Payment, transaction_id: str) -> dict:
    """A verified, successful WeChat payment of a top-up: credited once."""
    with write_transaction():
        changed = bool(Payment.update(status="paid", transaction_id=transaction_id).where(
            (Payment.id == payment.id) & (Payment.status == "pending")).execute())
        topup = TopUp.get(TopUp.out_trade_no == payment.out_trade_no)
        if changed:
            TopUp.update(status="paid", paid_at_ms=now_ms()).where(
                (TopUp.id == topup.id) & (TopUp.status == "pending")).execute()
            balance = ledger.credit(
                topup.user_id, topup.amount, kind="topup", ref=f"topup:{topup.id}",
                memo=f"top-up {topup.id} by WeChat Pay, trade {payment.out_trade_no}, "
                     f"transaction {transaction_id}")
            on_commit(lambda: _announce(topup.id, balance))
    if not changed:
        logger.info("top-up %s: payment %s handled already", topup.id, payment.out_trade_no)
        if TopUp.get_by_id(topup.id).status == "paid":
            _announce(topup.id)  # in case the first run died before telling
    return {"changed": changed, "late_refund": False, "duplicate": None}
