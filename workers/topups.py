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

4. `sweep` (beat): a top-up still pending at its expiry (`expires_at_ms`, the
   trade's time_expire, HALL_TOPUP_EXPIRE_S after it opened) is asked about
   at the gateway first, since the payer may have paid at the last second
   with the notification still on its way: paid, it is credited by
   `wechat_paid` as above. Unpaid, the trade is closed at the gateway (the
   close API, as a deposit's in workers/deposits.py), then the payment and
   the top-up `closed` in one guarded transaction, and the owner is told
   (`topup`, status `closed`). A redelivered start task of a closed top-up
   opens nothing again.
5. Money that still arrives for a closed trade (a payment already under way
   when it was closed: the race closing cannot rule out) is refunded to the
   payer by workers/payments.py, as for a deposit's closed trade, once the
   gateway's query confirms it; the closed top-up credits nothing.
"""
from __future__ import annotations

import logging

from peewee import IntegrityError

import settings
from auction import keys, ledger
from auction.errors import Refused
from auction.wechatpay import WeChatPayClient, WeChatPayError, WeChatPayUnavailable
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
        opened = now_ms()
        try:
            with write_transaction():
                topup = TopUp.create(user=user_id, amount=amount, task_id=task_id,
                                     out_trade_no=out_trade_no, scene=who.scene,
                                     created_at_ms=opened, expires_at_ms=expiry(opened))
                Payment.create(user=user_id, method="wechat", amount=amount,
                               out_trade_no=out_trade_no, scene=who.scene)
        except IntegrityError:  # a copy of this task got there first
            topup = TopUp.get(TopUp.task_id == task_id)
    if topup.status in ("paid", "closed"):
        # A redelivered task after the payment, or after the expiry closed the
        # trade: nothing to pay (the user starts a new top-up).
        return {"status": topup.status, "topup": topup.public(), "amount": topup.amount}
    answer = gateway.prepay(client, who, topup.out_trade_no, DESCRIPTION, topup.amount,
                            expires_ms=topup.expires_at_ms)
    return {"status": "awaiting_payment", "topup_id": topup.id,
            "out_trade_no": topup.out_trade_no, "amount": topup.amount,
            "expires_at_ms": topup.expires_at_ms, **answer}


def expiry(opened_ms: int) -> int:
    """When a top-up opened at `opened_ms` can no longer be paid."""
    return opened_ms + settings.TOPUP_EXPIRE_S * 1000


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


# -- expiry: closing what was never paid --------------------------------------------


def sweep(now: int | None = None, limit: int = 20) -> dict:
    """Beat: each pending top-up past its expiry, closed or found paid
    (`close_expired`); one that cannot be settled now (the gateway did not
    answer) is tried again HALL_PAYMENT_CHECK_AFTER_S later. The ids by outcome."""
    now = now_ms() if now is None else now
    every_ms = max(int(settings.PAYMENT_CHECK_AFTER_S * 1000), 1000)
    due = (TopUp.select(TopUp.id)
           .where((TopUp.status == "pending")
                  & ((TopUp.expires_at_ms <= now)
                     | (TopUp.expires_at_ms.is_null()
                        & (TopUp.created_at_ms <= now - settings.TOPUP_EXPIRE_S * 1000))))
           .order_by(TopUp.id).limit(limit))
    r = publish.client()
    outcomes: dict[str, list[int]] = {"closed": [], "paid": [], "unchanged": [], "failed": []}
    for row in due:
        if not r.set(keys.topup_close(row.id), 1, nx=True, px=every_ms):
            continue  # being closed, or tried a moment ago
        try:
            outcomes[close_expired(row.id)].append(row.id)
        except (WeChatPayError, Refused) as exc:
            logger.warning("top-up %s: not closed this round: %r", row.id, exc)
            outcomes["failed"].append(row.id)
    return outcomes


def _settled_if_paid(client: WeChatPayClient, payment: Payment) -> str | None:
    """The gateway's trade_state of the top-up's trade; paid there (its
    notification late or lost), it is credited here first, once. None: the
    gateway never had the trade (its prepay never got through)."""
    try:
        order = client.query_order(payment.out_trade_no)
    except WeChatPayError as exc:
        if exc.code == "ORDER_NOT_EXIST":
            return None
        raise
    state = str(order.get("trade_state"))
    if state in gateway.PAID_STATES:
        gateway.paid_amount_matches(payment, (order.get("amount") or {}).get("total"))
        wechat_paid(payment, order.get("transaction_id") or "")
    return state


def close_expired(topup_id: int) -> str:
    """One pending top-up past its expiry: `paid` (the gateway says it was
    paid: credited), `closed` (closed at the gateway and here, the owner
    told) or `unchanged` (no longer pending)."""
    topup = TopUp.get_by_id(topup_id)
    if topup.status != "pending":
        return "unchanged"
    payment = Payment.get(Payment.out_trade_no == topup.out_trade_no)
    client = gateway.wechat_client()
    state = _settled_if_paid(client, payment)
    if state in gateway.PAID_STATES:
        return "paid"
    if state is not None:
        try:
            client.close_order(topup.out_trade_no)
        except WeChatPayUnavailable:
            raise  # the gateway did not answer: the next round tries again
        except WeChatPayError:
            # Refused (ORDERPAID): paid between the query and the close.
            state = _settled_if_paid(client, payment)
            if state in gateway.PAID_STATES:
                return "paid"
            if state != "CLOSED":
                raise
    with write_transaction():
        closed = bool(Payment.update(status="closed").where(
            (Payment.id == payment.id) & (Payment.status == "pending")).execute())
        if closed:
            TopUp.update(status="closed", closed_at_ms=now_ms()).where(
                (TopUp.id == topup.id) & (TopUp.status == "pending")).execute()
            on_commit(lambda: _announce(topup.id))
    if not closed:  # its notification was applied meanwhile: paid, credited
        return "unchanged"
    logger.info("top-up %s: unpaid at its expiry, WeChat trade %s closed", topup.id,
                topup.out_trade_no)
    return "closed"
