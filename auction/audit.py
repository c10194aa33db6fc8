"""The audit log (审计日志): who changed what, before and after.

`record` is called inside the `models.write_transaction()` of the change it
describes, so the entry commits with the change or not at all: the ledger
(auction/ledger.py) records every balance movement, the operator handlers
record every operator action. Entries are append-only (models.AuditEntry).
"""
from __future__ import annotations

from typing import Any

from models import AuditEntry, db

# Operator actions and money movements, one word each (the `action` column).
ACTIONS = (
    "session.create", "session.edit", "session.publish", "session.reorder",
    "lot.create", "lot.edit", "lot.open", "lot.pause", "lot.resume", "lot.fair_warning",
    "lot.hammer", "user.ban", "user.unban", "user.strike", "coupon.issue", "task.rerun",
    "money.credit", "money.deposit", "money.order", "money.refund", "money.forfeit",
    "money.topup",
)


class Actor:
    """Who made a change: an operator (id and name), or the system."""

    def __init__(self, user_id: int | None = None, name: str = "system") -> None:
        self.id = user_id
        self.name = name

    def __repr__(self) -> str:
        return f"Actor({self.id!r}, {self.name!r})"


SYSTEM = Actor()

# Second-chance offers of forfeited lots (auction/offers.py), target `lot:{id}`.
ACTIONS += ("lot.preemption",)
ACTIONS += ("offer.create", "offer.accept", "offer.decline", "offer.expire", "offer.none_left")


def record(action: str, target: str, *, actor: Actor | None = None,
           before: Any = None, after: Any = None) -> AuditEntry:
    """Append one entry; only inside the write transaction of the change."""
    # Any ledger kind is a money movement (a new kind must not stop money moving).
    if action not in ACTIONS and not action.startswith("money."):
        raise ValueError(f"unknown audit action {action}")
    if not db.obj.in_transaction():
        raise RuntimeError("an audit entry is written only inside models.write_transaction()")
    who = actor or SYSTEM
    return AuditEntry.create(actor_id=who.id, actor=who.name[:64], action=action,
                             target=target[:64], before=before, after=after)


def gateway_money(kind: str, user_id: int, amount: int, **fields: Any) -> AuditEntry:
    """A money movement that changes no balance, so the ledger writes no entry
    for it: a WeChat payment coming in (`deposit`, `order`), a WeChat refund
    going out (`refund`), a deposit kept for a forfeited order (`forfeit`).
    Only inside the write transaction of the change, as `record`."""
    return record(f"money.{kind}", f"user:{user_id}", after={"amount": amount, **fields})
