"""Order payment tasks (queue: money; the forfeiture sweep is `money_sweep`
in workers/tasks/settlement.py)."""
from __future__ import annotations

from auction import tasknames
from workers import orders
from workers.celery import app
from workers.tasks import OwnedTask


class OrderTask(OwnedTask):
    abstract = True
    kind = "order_payment"


@app.task(name=tasknames.PAY_ORDER, base=OrderTask, bind=True)
def pay_order(self, user_id: int, order_id: int, method: str, coupon_id: int | None = None,
              scene: str | None = None, client_ip: str | None = None,
              app: str | None = None) -> dict:
    return orders.pay_order(user_id, order_id, method, coupon_id, self.request.id, scene,
                            client_ip, app)
