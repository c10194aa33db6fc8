"""Deposit payment tasks (queue: money)."""
from __future__ import annotations

from workers import deposits
from workers.celery import app
from workers.tasks import HallTask, OwnedTask


class DepositTask(OwnedTask):
    abstract = True
    kind = "deposit"


@app.task(base=DepositTask, bind=True)
def pay_deposit(self, user_id: int, lot_id: int, scope: str, method: str) -> dict:
    return deposits.pay_deposit(user_id, lot_id, scope, method, self.request.id)


@app.task(base=HallTask)
def wechat_paid(out_trade_no: str, transaction_id: str, trade_state: str,
                total: int | None) -> dict:
    return deposits.wechat_paid(out_trade_no, transaction_id, trade_state, total)
