"""优惠券: the coupon rules, shared by the hall (refuse at once) and the
workers (check again inside the payment's transaction).

`fixed` (fen off) or `percent` (1-100 % off), a minimum spend measured on the
order total (hammer price + premium), an expiry, one use. A coupon reserved
by a WeChat payment of an order stays usable for that order only.
"""
from __future__ import annotations

from typing import Any


def coupon_problem(coupon: Any, user_id: int, order: Any, now: int) -> tuple[str, str] | None:
    """Why this coupon cannot pay towards this order, as (code, message), or None."""
    if coupon is None or coupon.user_id != user_id:
        return "not_found", "no such coupon"
    if coupon.used_at_ms is not None and order.coupon_id != coupon.id:
        return "conflict", "this coupon has been used"
    if coupon.expires_at_ms <= now:
        return "conflict", "this coupon has expired"
    if order.amount + order.premium < coupon.min_spend:
        return "conflict", f"this coupon needs a spend of {coupon.min_spend} fen"
    if coupon.kind not in ("fixed", "percent") or coupon.value <= 0 or (
            coupon.kind == "percent" and coupon.value > 100):
        return "conflict", "this coupon cannot be used"
    return None


def discount(coupon: Any, due: int) -> int:
    """Fen the coupon takes off `due` (never more than `due`)."""
    if coupon is None:
        return 0
    off = coupon.value if coupon.kind == "fixed" else due * coupon.value // 100
    return max(0, min(off, due))
