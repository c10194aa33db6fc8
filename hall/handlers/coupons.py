"""优惠券 (coupons): POST /api/admin/users/{id}/coupons, GET /api/me/coupons.

An operator issues a coupon to one user: `fixed` (fen off the order, 1..10^12)
or `percent` (1-100 % off), an optional minimum spend (measured on the order
total, hammer price + premium), and an expiry in the future. The user spends
it with `POST /api/orders/{id}/pay {coupon_id}`; the worker checks it again
and marks it used (workers/orders.py).
"""
from __future__ import annotations

from auction import audit
from hall.errors import ApiError
from hall.handlers.admin import AdminHandler
from hall.handlers.base import BaseHandler
from hall.validate import choice, integer, money, positive_id
from models import Coupon, User, now_ms

MAX_COUPON_LIFETIME_MS = 5 * 366 * 24 * 3600 * 1000
MAX_LISTED = 500


def coupon_public(c: Coupon, now: int) -> dict:
    return {"id": c.id, "kind": c.kind, "value": c.value, "min_spend": c.min_spend,
            "expires_at_ms": c.expires_at_ms, "used_at_ms": c.used_at_ms,
            "usable": c.used_at_ms is None and c.expires_at_ms > now}


class AdminUserCouponsHandler(AdminHandler):
    """Issue a coupon to a user (operator)."""

    async def post(self, user_id: str) -> None:
        uid = positive_id(user_id)
        data = self.json_body()
        kind = choice(data, "kind", ("fixed", "percent"))
        if kind == "fixed":
            value = money(data, "value")
        else:
            value = integer(data, "value", minimum=1, maximum=100)
        min_spend = money(data, "min_spend", required=False, allow_zero=True) or 0
        now = now_ms()
        expires = integer(data, "expires_at_ms", minimum=now + 1,
                          maximum=now + MAX_COUPON_LIFETIME_MS)
        if await User.aget_or_none(User.id == uid) is None:
            raise ApiError("not_found", "no such user")
        def issue() -> Coupon:
            row = Coupon.create(user=uid, kind=kind, value=value, min_spend=min_spend,
                                expires_at_ms=expires)
            audit.record("coupon.issue", f"user:{uid}", actor=self.actor,
                         after={"coupon_id": row.id, **coupon_public(row, now)})
            return row
        coupon = await self.audited(issue)
        self.send({**coupon_public(coupon, now), "user_id": uid}, 201)


class MyCouponsHandler(BaseHandler):
    """My coupons, with whether each can still be used."""

    async def get(self) -> None:
        user = self.require_user()
        rows = await self.db.list(Coupon.select().where(Coupon.user == user.id)
                                  .order_by(Coupon.id.desc()).limit(MAX_LISTED))
        now = now_ms()
        self.send({"coupons": [coupon_public(c, now) for c in rows]})
