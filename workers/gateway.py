"""Payment gateway helpers of the money side: the WeChat Pay client, trade
numbers, and the payer of each scene.

Trade numbers derive from the task id, so a redelivered task asks the gateway
for the same thing again (the gateway is idempotent by out_trade_no and by
out_refund_no) instead of paying or refunding twice.

Scenes (chosen by the client, docs/wechat.md): ``jsapi`` inside WeChat or the
mini-program pays with the openid WeChat gave us for that user (a
``WeChatIdentity`` row: nothing here ever makes an openid up; none bound is
``conflict``), ``native`` shows a QR code on a desktop, ``h5`` sends a phone
browser to WeChat's cashier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import settings
from auction import qr
from auction.errors import Refused
from auction.wechatlogin import MINIPROGRAM, OFFICIAL_ACCOUNT
from auction.wechatpay import WeChatPayClient, WeChatPayConfig, WeChatPayError
from models import WeChatIdentity

JSAPI, NATIVE, H5 = "jsapi", "native", "h5"
SCENES = (JSAPI, NATIVE, H5)

DEPOSIT, ORDER, TOPUP = "D", "O", "T"  # out_trade_no prefixes
PAID_STATES = ("SUCCESS", "REFUND")  # trade_state of a paid trade (REFUND: refunded since)


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


@dataclass(frozen=True)
class Payer:
    """Who pays a WeChat trade, and in which scene."""

    user_id: int
    scene: str
    openid: str | None = None  # jsapi: WeChat's openid of this user for `appid`
    appid: str | None = None
    client_ip: str | None = None  # h5: the payer's address, as the hall saw it
    app: str | None = None  # jsapi: miniprogram or official_account (whose openid)


def payer(user_id: int, scene: str | None, client_ip: str | None = None,
          app: str | None = None) -> Payer:
    """The payer of a scene (default jsapi, as before scenes existed); refused
    before anything is written when the scene cannot be paid: jsapi with no
    openid bound (`conflict`: log in with WeChat or bind it first)."""
    scene = scene or JSAPI
    if scene not in SCENES:
        raise Refused("invalid", f"scene: one of {', '.join(SCENES)}")
    if scene == H5:
        if not client_ip:
            raise Refused("invalid", "an H5 payment needs the payer's address")
        return Payer(user_id, H5, client_ip=client_ip)
    if scene == NATIVE:
        return Payer(user_id, NATIVE)
    appids = {MINIPROGRAM: settings.WECHAT_MINI_APPID, OFFICIAL_ACCOUNT: settings.WECHAT_OA_APPID}
    wanted = [appids[app]] if app in appids else [appids[MINIPROGRAM], appids[OFFICIAL_ACCOUNT]]
    bound = {i.appid: i for i in WeChatIdentity.select().where(
        (WeChatIdentity.user == user_id) & WeChatIdentity.appid.in_(wanted))}
    for kind in ([app] if app in appids else [MINIPROGRAM, OFFICIAL_ACCOUNT]):
        # The mini-program's first, unless the client said which.
        if appids[kind] in bound:
            return Payer(user_id, JSAPI, openid=bound[appids[kind]].openid,
                         appid=appids[kind], app=kind)
    raise Refused("conflict", "a WeChat JSAPI payment needs your WeChat account: log in "
                              "with WeChat or bind it (POST /api/me/wechat) first")


def prepay(client: WeChatPayClient, who: Payer, out_trade_no: str, description: str,
           amount: int, expires_ms: int | None = None) -> dict[str, Any]:
    """The scene's prepay at the gateway, as the task's result shows it:
    ``prepay`` always (jsapi: the signed ``wx.requestPayment`` parameters),
    plus ``code_url`` and its QR code (``qr``, an SVG data URI) for native,
    ``h5_url`` for h5. The same trade again answers the same. ``expires_ms``:
    the trade's time_expire (unset: the gateway's default)."""
    if who.scene == NATIVE:
        code_url = client.native_prepay(out_trade_no, description, amount, expires_ms)
        return {"scene": NATIVE, "code_url": code_url, "qr": qr.svg_data_uri(code_url),
                "prepay": {"code_url": code_url}}
    if who.scene == H5:
        h5_url = client.h5_prepay(out_trade_no, description, amount, who.client_ip or "",
                                  expires_ms)
        return {"scene": H5, "h5_url": h5_url, "prepay": {"h5_url": h5_url}}
    params = client.jsapi_prepay(out_trade_no, description, amount, who.openid or "",
                                 appid=who.appid, expires_ms=expires_ms)
    return {"scene": JSAPI, "prepay": params}
