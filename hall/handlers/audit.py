"""GET /api/admin/audit: the audit log, oldest first, read only.

There is deliberately no other method on this resource: entries are
written only by the changes they record (auction/audit.py).
"""
from __future__ import annotations

import re

from hall.errors import ApiError
from hall.handlers.admin import AdminHandler
from models import AuditEntry

TARGET = re.compile(r"^[a-z_]{1,16}(:[0-9]{1,19})?$")
ACTION = re.compile(r"^[a-z_]{1,20}(\.[a-z_]{1,20})?$")
MAX_LIMIT = 1000


def _int_arg(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 19 or int(raw) > maximum:
        raise ApiError("invalid", f"{name} must be an integer from 0 to {maximum}")
    return int(raw)


class AuditHandler(AdminHandler):
    """The audit log: `since_id`, `limit`, `target` (lot:12 or lot), `action`, `actor_id`."""

    async def get(self) -> None:
        since = _int_arg(self.get_query_argument("since_id", None), "since_id", 0, 2**63 - 1)
        limit = _int_arg(self.get_query_argument("limit", None), "limit", 100, MAX_LIMIT) or 100
        query = AuditEntry.select().where(AuditEntry.id > since)
        target = self.get_query_argument("target", "")
        if target:
            if not TARGET.match(target):
                raise ApiError("invalid", "target is a kind (lot) or a kind and id (lot:12)")
            query = query.where(AuditEntry.target == target if ":" in target
                                else AuditEntry.target.startswith(f"{target}:"))
        action = self.get_query_argument("action", "")
        if action:
            if not ACTION.match(action):
                raise ApiError("invalid", "action is like lot.pause, or a prefix like money")
            query = query.where(AuditEntry.action == action if "." in action
                                else AuditEntry.action.startswith(f"{action}."))
        actor = self.get_query_argument("actor_id", "")
        if actor:
            query = query.where(AuditEntry.actor_id == _int_arg(actor, "actor_id", 0, 2**63 - 1))
        rows = await self.db.list(query.order_by(AuditEntry.id).limit(limit))
        self.send({"entries": [r.public() for r in rows]})
