"""GET /api/tasks/{id}: the state of one's own worker task."""
from __future__ import annotations

from hall.handlers.base import BaseHandler
from hall.tasks import task_status
from hall.errors import ApiError


class TaskHandler(BaseHandler):
    async def get(self, task_id: str) -> None:
        user = self.require_user()
        if len(task_id) > 64:
            raise ApiError("not_found", "no such task")
        self.send(await task_status(self.application, task_id, user.id))
