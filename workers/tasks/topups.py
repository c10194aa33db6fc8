"""充值 tasks (queue: money): opening a top-up's WeChat trade. Those left unpaid
past their expiry are closed by the money tick (workers/tasks/settlement.py);
a payment arrives as a WeChat notification (workers/tasks/deposits.py wechat_paid)."""
from __future__ import annotations

from auction import tasknames
from workers import topups
from workers.celery import app
from workers.tasks import OwnedTask


class TopUpTask(OwnedTask):
    abstract = True
    kind = "topup"


@app.task(name=tasknames.TOPUP, base=TopUpTask, bind=True)
def start_topup(self, user_id: int, amount: int, scene: str | None = None,
                client_ip: str | None = None, app: str | None = None) -> dict:
    return topups.start_topup(user_id, amount, self.request.id, scene, client_ip, app)
