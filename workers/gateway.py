"""Payment gateway helpers of the money side: the WeChat Pay client and trade numbers.

Trade numbers derive from the task id, so a redelivered task asks the gateway
for the same thing again (the gateway is idempotent by out_trade_no and by
out_refund_no) instead of paying or refunding twice.
"""
from __future__ import annotations

from typing import Any

from auction.errors import Refused
from auction.wechatpay import WeChatPayClient, WeChatPayConfig, WeChatPayError

DEPOSIT, ORDER = "D", "O"  # out_trade_no prefixes


def trade_no(prefix: str, task_id: str) -> str:
    """out_trade_no for the payment a task starts (6-32 characters)."""
    return prefix + task_id.replace("-", "")[:31]


def refund_no(out_trade_no: str) -> str:
    """out_refund_no of the one refund of a payment: the same on every retry."""
    return f"R{out_trade_no}"


def payment_refund_no(out_trade_no: str) -> str:
    """out_refund_no of the refund of a payment nothing wants (models.PaymentRefund):
    the same on every retry, and never the number of a deposit's refund."""
    return f"RP{out_trade_no}"


def wechat_client() -> WeChatPayClient:
    """The gateway client, or Refused("unavailable") before anything is written
    (a deposit left pending for a gateway we cannot reach would block the user)."""
    try:
        config = WeChatPayConfig.from_settings()
    except WeChatPayError as exc:
        raise Refused("unavailable", f"WeChat Pay is not configured ({exc.code})")
    if not config.api_base or not config.notify_url:
        raise Refused("unavailable", "WeChat Pay is not configured (WECHAT_API_BASE, "
                                     "WECHAT_NOTIFY_URL)")
    return WeChatPayClient(config)


def paid_amount_matches(payment: Any, total: int | None) -> None:
    """Refused("invalid") when the gateway says another amount was paid:
    nothing is settled for it (the operators reconcile by hand)."""
    if total != payment.amount:
        raise Refused("invalid", "the paid amount does not match")
