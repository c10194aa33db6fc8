"""Order payment and forfeiture tasks.

Note: settings.CELERY_TASK_ROUTES has no entry for `workers.tasks.orders.*`,
so these run on the default queue (`lots`); the periodic money sweep lives in
workers/tasks/settlement.py (queue `money`).
"""
from __future__ import annotations

from workers import orders
from workers.celery import app
from workers.tasks import OwnedTask


class OrderTask(OwnedTask):
    abstract = True
    kind = "order_payment"


@app.task(base=OrderTask, bind=True)
def pay_order(self, user_id: int, order_id: int, method: str, coupon_id: int | None = None) -> dict:
    return orders.pay_order(user_id, order_id, method, coupon_id, self.request.id)
