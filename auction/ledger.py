"""The ledger: the only code that changes a balance (余额).

Every change of `User.balance` goes through `credit` or `debit`, which write
the LedgerEntry in the same transaction, so the sum of a user's entries always
equals their balance. An entry's `ref` is unique: the same money movement
(a deposit, a refund, an order payment, a top-up) can be written only once,
and a task run twice fails the second write instead of moving money again.

Both run inside the caller's `models.write_transaction()`: the change to the
balance and the change it pays for (a deposit paid, an order paid, a refund
recorded) commit together or not at all, with the movement's audit entry
(`money.<kind>`, auction/audit.py). The hall calls them through
`await db.run(...)`, the workers directly.
"""
from __future__ import annotations

import uuid

from auction import audit
from auction.errors import Refused
from models import LedgerEntry, User, db

MAX_BALANCE = 10**15  # fen; far above any sale, far below 2**63


def _check_transaction() -> None:
    if not db.obj.in_transaction():
        raise RuntimeError("a balance changes only inside models.write_transaction()")


def credit(user_id: int, amount: int, *, kind: str, ref: str, memo: str = "",
           actor: audit.Actor | None = None) -> int:
    """Add `amount` fen (> 0) to the balance; returns the new balance.

    `actor`: the operator behind the movement (an operator's credit), else
    the system.

    Refused("invalid") if the balance would pass MAX_BALANCE."""
    _check_transaction()
    if amount <= 0:
        raise ValueError("a credit is a positive amount")
    moved = User.update(balance=User.balance + amount).where(
        (User.id == user_id) & (User.balance + amount <= MAX_BALANCE)).execute()
    if not moved:
        if User.get_or_none(User.id == user_id) is None:
            raise Refused("not_found", "no such user")
        raise Refused("invalid", "that would make the balance too large")
    return _entry(user_id, amount, kind, ref, memo, actor)


def debit(user_id: int, amount: int, *, kind: str, ref: str, memo: str = "",
          short: str = "", actor: audit.Actor | None = None) -> int:
    """Take `amount` fen from the balance; returns the new balance.

    Refused("insufficient_balance", short or a default message) if the balance
    is less: nothing is taken (the caller's transaction rolls back). A debit of
    0 (an order a coupon paid in full) changes nothing but is still recorded."""
    _check_transaction()
    if amount < 0:
        raise ValueError("a debit is not negative")
    moved = User.update(balance=User.balance - amount).where(
        (User.id == user_id) & (User.balance >= amount)).execute()
    if not moved:
        raise Refused("insufficient_balance",
                      short or f"this needs {amount} fen; top up your balance first")
    return _entry(user_id, -amount, kind, ref, memo, actor)


def _entry(user_id: int, amount: int, kind: str, ref: str, memo: str,
           actor: audit.Actor | None) -> int:
    balance = User.get_by_id(user_id).balance
    entry = LedgerEntry.create(user=user_id, amount=amount, balance_after=balance, kind=kind,
                               ref=ref, memo=memo[:255])
    audit.record(f"money.{kind}", f"user:{user_id}", actor=actor,
                 before={"balance": balance - amount},
                 after={"balance": balance, "amount": amount, "ref": ref,
                        "ledger_id": entry.id, "memo": memo[:255]})
    return balance


def new_ref(kind: str) -> str:
    """A ref for a movement that has no natural key (an operator's credit)."""
    return f"{kind}:{uuid.uuid4()}"
