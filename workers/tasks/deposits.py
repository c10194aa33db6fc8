"""Deposit payment tasks (queue: money)."""
from __future__ import annotations

from auction import tasknames
from workers import deposits, payments
from workers.celery import app
from workers.tasks import OwnedTask


class DepositTask(OwnedTask):
    abstract = True
    kind = "deposit"


class WeChatPaidTask(OwnedTask):
    abstract = True
    kind = "wechat_payment"


@app.task(name=tasknames.PAY_DEPOSIT, base=DepositTask, bind=True)
def pay_deposit(self, user_id: int, lot_id: int, scope: str, method: str) -> dict:
    return deposits.pay_deposit(user_id, lot_id, scope, method, self.request.id)


@app.task(name=tasknames.WECHAT_PAID, base=WeChatPaidTask)
def wechat_paid(out_trade_no: str, transaction_id: str, trade_state: str,
                total: int | None, user_id: int | None = None) -> dict:
    """A verified WeChat Pay notification (deposit or order); `user_id` is the
    payer, told with a `task` message (kind `wechat_payment`) when it is done."""
    return payments.wechat_paid(out_trade_no, transaction_id, trade_state, total)
