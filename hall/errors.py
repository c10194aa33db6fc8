"""API errors: one exception type carrying the contract's error code."""
from __future__ import annotations

# HTTP status for each error code of API.md.
STATUS = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "banned": 403,
    "not_found": 404,
    "too_low": 409,
    "lot_not_open": 409,
    "lot_closed": 409,
    "no_deposit": 409,
    "already_leading": 409,
    "insufficient_balance": 409,
    "already_paid": 409,
    "conflict": 409,
    "offer_expired": 409,
    "payload_too_large": 413,
    "unsupported_media": 415,
    "rate_limited": 429,
    "unavailable": 503,
}


class ApiError(Exception):
    def __init__(self, code: str, message: str = "", **extra: object) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message or code.replace("_", " ")
        self.extra = extra  # more fields of the error body (e.g. which lots are late)

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, **self.extra}
