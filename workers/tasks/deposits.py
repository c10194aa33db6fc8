"""Deposit payment tasks, WeChat Pay notifications and the refunds of money
nothing wants (queue: money)."""
from __future__ import annotations

from auction import tasknames
from auction.wechatpay import WeChatPayUnavailable
from workers import deposits, payments, refunds
from workers.celery import app
from workers.tasks import TRANSIENT, HallTask, OwnedTask


class DepositTask(OwnedTask):
    abstract = True
    kind = "deposit"


class WeChatPaidTask(OwnedTask):
    abstract = True
    kind = "wechat_payment"


@app.task(name=tasknames.PAY_DEPOSIT, base=DepositTask, bind=True)
def pay_deposit(self, user_id: int, lot_id: int, scope: str, method: str,
                scene: str | None = None, client_ip: str | None = None,
                app: str | None = None) -> dict:
    return deposits.pay_deposit(user_id, lot_id, scope, method, self.request.id, scene,
                                client_ip, app)


# Retried while the gateway does not answer: a payment of a closed trade is
# checked with the gateway's query before it is believed (workers/payments.py).
@app.task(name=tasknames.WECHAT_PAID, base=WeChatPaidTask,
          autoretry_for=TRANSIENT + (WeChatPayUnavailable,))
def wechat_paid(out_trade_no: str, transaction_id: str, trade_state: str,
                total: int | None, user_id: int | None = None) -> dict:
    """A verified WeChat Pay notification (deposit or order); `user_id` is the
    payer, told with a `task` message (kind `wechat_payment`) when it is done."""
    return payments.wechat_paid(out_trade_no, transaction_id, trade_state, total)


@app.task(name=tasknames.RECONCILE_PAYMENT, base=HallTask,
          autoretry_for=TRANSIENT + (WeChatPayUnavailable,), max_retries=12)
def reconcile_payment(out_trade_no: str) -> dict:
    """A pending WeChat payment whose notification has not come: ask the gateway."""
    return payments.reconcile(out_trade_no)


@app.task(name=tasknames.SEND_PAYMENT_REFUND, base=HallTask,
          autoretry_for=TRANSIENT + (WeChatPayUnavailable,), max_retries=12)
def send_payment_refund(payment_refund_id: int) -> dict:
    """A refund of money nothing wants to the gateway (idempotent by out_refund_no)."""
    return refunds.send_payment_refund(payment_refund_id)
