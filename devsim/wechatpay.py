"""Local WeChat Pay API v3 gateway simulator.

Speaks the real protocol so production code runs unchanged against it:
merchant requests must carry a valid ``WECHATPAY2-SHA256-RSA2048``
Authorization (else 401 ``SIGN_ERROR``), every /v3 answer is signed with the
*platform* private key (``Wechatpay-*`` headers), and payment notifications are
AEAD_AES_256_GCM-encrypted with the APIv3 key and signed.

The protocol side is written here independently of ``auction/wechatpay.py``
(only the key files are shared, via ``dev_keys``) so that a mistake in the
client's signing strings cannot be mirrored and go unnoticed.

Run:     python -m devsim.wechatpay --port 8890 --keys var/wechat
Import:  handle = start_simulator(0, keys_dir); handle.url; handle.stop()

Gateway endpoints:
  POST /v3/pay/transactions/jsapi                 -> {"prepay_id"}; a closed order:
                                                   400 ORDER_CLOSED, a paid one ORDERPAID;
                                                   an openid this simulator never issued
                                                   for that appid: 400 PARAM_ERROR
  POST /v3/pay/transactions/native                -> {"code_url": "weixin://wxpay/..."}
  POST /v3/pay/transactions/h5 {scene_info}       -> {"h5_url"}: the simulator's cashier page
  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=
  POST /v3/pay/transactions/out-trade-no/{no}/close  {mchid} -> 204; a paid order: ORDERPAID
  POST /v3/refund/domestic/refunds                idempotent by out_refund_no
WeChat login (api.weixin.qq.com, open.weixin.qq.com), apps from `apps`:
  GET  /sns/jscode2session?appid&secret&js_code  -> {openid, session_key, unionid}
                                                   or {errcode: 40029} (bad or used code)
  GET  /connect/oauth2/authorize?appid&redirect_uri&scope=snsapi_base&state
                                                 -> 302 redirect_uri?code=&state= (silent)
  GET  /sns/oauth2/access_token?appid&secret&code -> {access_token, openid, scope, ...}
Test controls (no auth):
  POST /sim/wx/login {appid?, user?}              a wx.login code for WeChat user `user`
                                                   (a name the test picks for one person;
                                                   the openids are the simulator's)
  POST /sim/pay {code_url}                        scanning a Native QR code and paying it
  GET|POST /sim/h5/{prepay_id}                    the H5 cashier page; POST pays, then
                                                   redirects to `redirect_url`
  POST /sim/pay {out_trade_no, deliver?=true,     mark paid (a closed order: 400 ORDER_CLOSED,
                                                   one past its time_expire: 400 ORDER_EXPIRED),
                 after_close?=false}               POST the notification,
                                                   answer {status, body, notification_id}
                                                   (paying again re-delivers, same id);
                                                   after_close: a payment already under way
                                                   when the order was closed goes through
                                                   anyway (the race closing cannot rule out)
  POST /sim/expire {out_trade_no}                 the payer let the order time out: the
                                                   gateway closes it by itself (CLOSED)
  GET  /sim/orders, GET /sim/refunds              what the gateway saw
  POST /sim/fail {status?=500, code?, count?=1}   next /v3 answers fail (retry tests);
                 {clear: true}                     the gateway answers again
  POST /sim/reset                                 forget everything
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import string
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import tornado.escape
import tornado.httpclient
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devsim.server import ControlHandler, ThreadedServer, gateway_app, run_forever
from auction.wechatpay import DEV_APPID, DEV_MCHID, dev_keys

# The app secret the dev apps have here (settings.DEV_WECHAT_APP_SECRET: the
# hall's dev default, refused in production).
DEV_APP_SECRET = "dev-wechat-app-secret"

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
CST = timezone(timedelta(hours=8))  # the gateway reports times in Beijing time
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
ALNUM = string.ascii_letters + string.digits


def _now_rfc3339() -> str:
    return datetime.now(CST).isoformat(timespec="seconds")


def _nonce(n: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def _is_fen(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


class Gateway:
    """Gateway state and keys: the platform private key, the merchant public key."""

    def __init__(self, keys_dir: Path | str, mchid: str = DEV_MCHID,
                 apps: dict[str, str] | None = None) -> None:
        k = dev_keys(keys_dir)
        self.mchid = mchid
        # appid -> app secret of the WeChat apps whose users log in here.
        self.apps = dict(apps or {DEV_APPID: DEV_APP_SECRET})
        self.platform_key = serialization.load_pem_private_key(k.platform_private_pem, None)
        self.platform_serial = k.platform_serial
        self.merchant_public = serialization.load_pem_public_key(k.merchant_public_pem)
        self.merchant_serial = k.merchant_serial
        self.apiv3_key = k.apiv3_key.encode()
        self.reset()

    def reset(self) -> None:
        self.orders: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.faults: list[tuple[int, str]] = []
        # (appid, person) -> openid; a person's unionid is the same in every app.
        self.openids: dict[tuple[str, str], str] = {}
        self.unionids: dict[str, str] = {}
        self.codes: dict[str, tuple[str, str, float]] = {}  # code -> appid, person, expiry
        self.session_keys: list[str] = []  # every session_key handed out

    # ---------------------------------------------------------------- identity

    def issue_code(self, appid: str, person: str) -> str:
        """A one-time login code (wx.login, or the OAuth redirect), 5 minutes."""
        code = "0" + _nonce(31)
        self.codes[code] = (appid, person, time.time() + 300)
        return code

    def redeem(self, appid: str, code: str) -> tuple[str, str] | None:
        """The (openid, unionid) a code stands for, once; None if bad or used."""
        entry = self.codes.pop(code, None)
        if entry is None or entry[0] != appid or entry[2] < time.time():
            return None
        person = entry[1]
        openid = self.openids.setdefault((appid, person), "o" + _nonce(27))
        return openid, self.unionids.setdefault(person, "u" + _nonce(27))

    def knows(self, appid: str, openid: str) -> bool:
        return openid in {o for (a, _), o in self.openids.items() if a == appid}

    def find(self, b: dict) -> dict | None:
        """An order by out_trade_no, or by the code_url a payer scanned."""
        if b.get("code_url"):
            return next((o for o in self.orders.values()
                         if o.get("code_url") == b["code_url"]), None)
        return self.orders.get(b.get("out_trade_no", ""))

    async def pay(self, order: dict, deliver: bool = True) -> dict[str, Any]:
        """The payer pays: the order is SUCCESS and its notification is POSTed."""
        if order["trade_state"] in ("NOTPAY", "CLOSED"):
            order.update(
                trade_state="SUCCESS",
                transaction_id="4200" + "".join(secrets.choice(string.digits) for _ in range(24)),
                success_time=_now_rfc3339(),
                # Kept on the order: WeChat re-delivers with the same id.
                notification_id=str(uuid.uuid4()),
            )
        result: dict[str, Any] = {"notification_id": order["notification_id"], "status": None,
                                  "body": None}
        if deliver:
            body, headers = self.notification(order)
            try:
                resp = await tornado.httpclient.AsyncHTTPClient().fetch(
                    order["notify_url"], method="POST", body=body, headers=headers,
                    request_timeout=10, raise_error=False,
                )
                result.update(status=resp.code, body=(resp.body or b"").decode("utf-8", "replace"))
            except Exception as exc:  # noqa: BLE001 - unreachable notify_url is a result
                result.update(status=599, body=str(exc))
        result["order"] = self.transaction(order)
        return result

    def sign(self, message: bytes) -> str:
        sig = self.platform_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(sig).decode()

    def signed_headers(self, body: bytes) -> dict[str, str]:
        ts, nonce = str(int(time.time())), _nonce(32)
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": self.sign(f"{ts}\n{nonce}\n".encode() + body + b"\n"),
            "Wechatpay-Serial": self.platform_serial,
            "Wechatpay-Signature-Type": AUTH_SCHEMA,
        }

    def check_authorization(self, request: tornado.httputil.HTTPServerRequest) -> str | None:
        """Verify the merchant signature; return why it fails, or None."""
        schema, _, rest = request.headers.get("Authorization", "").partition(" ")
        if schema != AUTH_SCHEMA:
            return "Authorization schema is not " + AUTH_SCHEMA
        f = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if not all(f.get(k) for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")):
            return "Authorization is missing fields"
        if f["mchid"] != self.mchid:
            return "unknown mchid"
        if f["serial_no"] != self.merchant_serial:
            return "unknown merchant certificate serial"
        if not f["timestamp"].isdigit() or abs(time.time() - int(f["timestamp"])) > 300:
            return "timestamp expired"
        # request.uri is the path and query exactly as the client sent them.
        message = (
            f"{request.method}\n{request.uri}\n{f['timestamp']}\n{f['nonce_str']}\n".encode()
            + request.body
            + b"\n"
        )
        try:
            sig = base64.b64decode(f["signature"], validate=True)
            self.merchant_public.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "signature verification failed"
        return None

    def transaction(self, order: dict) -> dict[str, Any]:
        """The v3 transaction object (query answer and notification resource)."""
        t: dict[str, Any] = {
            "appid": order["appid"],
            "mchid": order["mchid"],
            "out_trade_no": order["out_trade_no"],
            "trade_type": order.get("trade_type", "JSAPI"),
            "trade_state": order["trade_state"],
            "trade_state_desc": {"NOTPAY": "未支付", "SUCCESS": "支付成功", "REFUND": "转入退款", "CLOSED": "已关闭"}[
                order["trade_state"]
            ],
            "attach": "",
            # A Native or H5 payer is known to WeChat only once they pay.
            "payer": {"openid": order["openid"] or f"o{order['out_trade_no'][-27:]:0>27}"},
            "amount": {"total": order["total"], "currency": "CNY"},
        }
        if order["transaction_id"]:
            t.update(
                transaction_id=order["transaction_id"],
                bank_type="OTHERS",
                success_time=order["success_time"],
            )
            t["amount"].update(payer_total=order["total"], payer_currency="CNY")
        return t

    def notification(self, order: dict) -> tuple[bytes, dict[str, str]]:
        """The signed, encrypted TRANSACTION.SUCCESS notification for a paid order."""
        plaintext = json.dumps(self.transaction(order), ensure_ascii=False).encode()
        nonce = _nonce(12)  # 96-bit GCM nonce, as the real gateway sends
        ciphertext = AESGCM(self.apiv3_key).encrypt(nonce.encode(), plaintext, b"transaction")
        body = json.dumps(
            {
                "id": order["notification_id"],
                "create_time": _now_rfc3339(),
                "event_type": "TRANSACTION.SUCCESS",
                "resource_type": "encrypt-resource",
                "summary": "支付成功",
                "resource": {
                    "original_type": "transaction",
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(ciphertext).decode(),
                    "associated_data": "transaction",
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json", **self.signed_headers(body)}
        return body, headers


class V3Handler(tornado.web.RequestHandler):
    """Merchant API: verifies the Authorization, signs every answer."""

    def initialize(self, gw: Gateway) -> None:
        self.gw = gw

    def prepare(self) -> None:
        if self.gw.faults:
            status, code = self.gw.faults.pop(0)
            return self.reply(status, {"code": code, "message": "injected fault"})
        why = self.gw.check_authorization(self.request)
        if why:
            self.reply(401, {"code": "SIGN_ERROR", "message": why})

    def reply(self, status: int, obj: dict) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Request-ID", uuid.uuid4().hex)
        for k, v in self.gw.signed_headers(body).items():
            self.set_header(k, v)
        self.finish(body)

    def fail(self, status: int, code: str, message: str) -> None:
        self.reply(status, {"code": code, "message": message})

    def body_json(self) -> dict | None:
        try:
            data = json.loads(self.request.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.reply(status_code if status_code >= 400 else 500,
                   {"code": "SYSTEM_ERROR", "message": "simulated gateway error"})


class PrepayHandler(V3Handler):
    """POST /v3/pay/transactions/{jsapi,native,h5}: one order, one scene."""

    def initialize(self, gw: Gateway, trade_type: str = "JSAPI") -> None:
        self.gw = gw
        self.trade_type = trade_type

    def post(self) -> None:
        b = self.body_json()
        if b is None:
            return self.fail(400, "PARAM_ERROR", "body is not a JSON object")
        amount, payer = b.get("amount"), b.get("payer")
        problem = (
            "appid" if not isinstance(b.get("appid"), str) or not b["appid"] else
            "mchid" if b.get("mchid") != self.gw.mchid else
            "description" if not isinstance(b.get("description"), str)
            or not 1 <= len(b["description"]) <= 127 else
            "out_trade_no" if not isinstance(b.get("out_trade_no"), str)
            or not OUT_TRADE_NO.fullmatch(b["out_trade_no"]) else
            "notify_url" if not isinstance(b.get("notify_url"), str)
            or not b["notify_url"].startswith(("http://", "https://")) else
            "amount.total" if not isinstance(amount, dict) or not _is_fen(amount.get("total")) else
            "amount.currency" if amount.get("currency", "CNY") != "CNY" else
            "payer.openid" if self.trade_type == "JSAPI" and (
                not isinstance(payer, dict) or not isinstance(payer.get("openid"), str)
                or not payer["openid"]) else
            "scene_info.payer_client_ip" if self.trade_type == "H5" and (
                not isinstance(b.get("scene_info"), dict)
                or not b["scene_info"].get("payer_client_ip")) else
            "time_expire" if "time_expire" in b and _expiry(b["time_expire"]) is None else
            None
        )
        if problem:
            return self.fail(400, "PARAM_ERROR", f"invalid {problem}")
        if self.trade_type == "JSAPI" and not self.gw.knows(b["appid"], payer["openid"]):
            # As WeChat: an openid is only ever one app's, and only WeChat issues it.
            return self.fail(400, "PARAM_ERROR", "appid和openid不匹配 (openid unknown for this appid)")
        no = b["out_trade_no"]
        order = {
            "appid": b["appid"], "mchid": b["mchid"], "out_trade_no": no,
            "description": b["description"], "notify_url": b["notify_url"],
            "total": amount["total"], "trade_type": self.trade_type,
            "openid": payer["openid"] if self.trade_type == "JSAPI" else None,
            "time_expire": b.get("time_expire"),
        }
        old = self.gw.orders.get(no)
        if old is not None:
            # Real gateway: same order again -> same prepay_id; changed -> error.
            if old["trade_state"] == "CLOSED":
                # As the real gateway: a closed order is never paid; pay with a new number.
                return self.fail(400, "ORDER_CLOSED", "order closed; place a new order")
            if old["trade_state"] != "NOTPAY":
                return self.fail(400, "ORDERPAID", "order already paid")
            if any(old[k] != v for k, v in order.items()):
                return self.fail(400, "INVALID_REQUEST", "out_trade_no reused with other parameters")
            return self.reply(200, self.answer(old))
        order.update(
            prepay_id=f"wx{time.strftime('%d%H%M%S')}{secrets.token_hex(13)}",
            trade_state="NOTPAY", transaction_id=None, success_time=None,
            notification_id=None, refunded=0, created_ms=int(time.time() * 1000),
        )
        if self.trade_type == "NATIVE":
            order["code_url"] = f"weixin://wxpay/bizpayurl?pr={_nonce(12)}"
        self.gw.orders[no] = order
        self.reply(200, self.answer(order))

    def answer(self, order: dict) -> dict:
        if self.trade_type == "NATIVE":
            return {"code_url": order["code_url"]}
        if self.trade_type == "H5":
            # The real h5_url is WeChat's cashier; here the simulator's own page.
            base = f"{self.request.protocol}://{self.request.host}"
            return {"h5_url": f"{base}/sim/h5/{order['prepay_id']}?package={_nonce(10)}"}
        return {"prepay_id": order["prepay_id"]}


class QueryHandler(V3Handler):
    def get(self, no: str) -> None:
        if self.get_query_argument("mchid", "") != self.gw.mchid:
            return self.fail(400, "PARAM_ERROR", "invalid mchid")
        order = self.gw.orders.get(no)
        if order is None:
            return self.fail(404, "ORDER_NOT_EXIST", "order does not exist")
        self.reply(200, self.gw.transaction(order))


class CloseHandler(V3Handler):
    def post(self, no: str) -> None:
        b = self.body_json()
        if b is None or b.get("mchid") != self.gw.mchid:
            return self.fail(400, "PARAM_ERROR", "invalid mchid")
        order = self.gw.orders.get(no)
        if order is None:
            return self.fail(404, "ORDER_NOT_EXIST", "order does not exist")
        if order["trade_state"] not in ("NOTPAY", "CLOSED"):
            return self.fail(400, "ORDERPAID", "order already paid")
        order["trade_state"] = "CLOSED"  # closing twice is fine, as on the real gateway
        self.set_status(204)
        for name, value in self.gw.signed_headers(b"").items():
            self.set_header(name, value)
        self.finish()


class RefundHandler(V3Handler):
    def post(self) -> None:
        b = self.body_json()
        if b is None:
            return self.fail(400, "PARAM_ERROR", "body is not a JSON object")
        amount = b.get("amount")
        if (
            not isinstance(b.get("out_refund_no"), str)
            or not OUT_REFUND_NO.fullmatch(b["out_refund_no"])
            or not isinstance(b.get("out_trade_no"), str)
            or not isinstance(amount, dict)
            or not _is_fen(amount.get("refund"))
            or not _is_fen(amount.get("total"))
            or amount.get("currency", "CNY") != "CNY"
        ):
            return self.fail(400, "PARAM_ERROR", "invalid refund request")
        done = self.gw.refunds.get(b["out_refund_no"])
        if done is not None:  # idempotent: the same refund number is one refund
            if done["out_trade_no"] != b["out_trade_no"] or done["amount"]["refund"] != amount["refund"]:
                return self.fail(400, "INVALID_REQUEST", "out_refund_no reused with other parameters")
            return self.reply(200, done)
        order = self.gw.orders.get(b["out_trade_no"])
        if order is None:
            return self.fail(404, "RESOURCE_NOT_EXISTS", "order does not exist")
        if order["trade_state"] not in ("SUCCESS", "REFUND"):
            return self.fail(400, "INVALID_REQUEST", "order is not paid")
        if amount["total"] != order["total"]:
            return self.fail(400, "PARAM_ERROR", "amount.total does not match the order")
        if amount["refund"] > order["total"] - order["refunded"]:
            return self.fail(400, "INVALID_REQUEST", "refund exceeds the refundable amount")
        now = _now_rfc3339()
        refund = {
            "refund_id": "50" + "".join(secrets.choice(string.digits) for _ in range(30)),
            "out_refund_no": b["out_refund_no"],
            "transaction_id": order["transaction_id"],
            "out_trade_no": order["out_trade_no"],
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": now,
            "success_time": now,
            # The real gateway often answers PROCESSING first; clients accept both.
            "status": "SUCCESS",
            "funds_account": "AVAILABLE",
            "amount": {
                "total": order["total"], "refund": amount["refund"],
                "payer_total": order["total"], "payer_refund": amount["refund"],
                "settlement_total": order["total"], "settlement_refund": amount["refund"],
                "discount_refund": 0, "currency": "CNY",
            },
            "reason": b.get("reason", ""),
        }
        order["refunded"] += amount["refund"]
        order["trade_state"] = "REFUND"
        self.gw.refunds[b["out_refund_no"]] = refund
        self.reply(200, refund)


def _expiry(text: object) -> datetime | None:
    """A prepay's time_expire (RFC 3339 with its offset), or None if it is not one."""
    if not isinstance(text, str) or not re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def expired(order: dict) -> bool:
    """Past the order's time_expire: as on WeChat, the payer can no longer pay
    it (it stays NOTPAY until the merchant closes it)."""
    until = _expiry(order.get("time_expire"))
    return until is not None and datetime.now(timezone.utc) >= until


class SimPayHandler(ControlHandler):
    async def post(self) -> None:
        b = self.body_json()
        order = self.gw.find(b)
        if order is None:
            return self.send(404, {"code": "ORDER_NOT_EXIST", "message": "no such order"})
        if order["trade_state"] == "CLOSED" and not b.get("after_close"):
            return self.send(400, {"code": "ORDER_CLOSED", "message": "the order was closed"})
        if expired(order) and not b.get("after_close"):
            return self.send(400, {"code": "ORDER_EXPIRED", "message": "the order has expired"})
        self.send(200, await self.gw.pay(order, b.get("deliver", True)))


class SimH5Handler(ControlHandler):
    """The H5 cashier a phone browser is sent to (WeChat's, simulated): it
    shows the amount; paying it delivers the notification and goes back to
    the merchant's redirect_url."""

    def order(self, prepay_id: str) -> dict:
        order = next((o for o in self.gw.orders.values() if o["prepay_id"] == prepay_id
                      and o.get("trade_type") == "H5"), None)
        if order is None:
            raise tornado.web.HTTPError(404)
        return order

    def get(self, prepay_id: str) -> None:
        order = self.order(prepay_id)
        back = self.get_query_argument("redirect_url", "")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width'><title>微信支付</title></head>"
            f"<body><main><h1>微信支付 (simulator)</h1><p>{tornado.escape.xhtml_escape(order['description'])}</p>"
            f"<p id='amount'>¥{order['total'] / 100:.2f}</p><p>{order['trade_state']}</p>"
            f"<form method='post'><input type='hidden' name='redirect_url' "
            f"value='{tornado.escape.xhtml_escape(back)}'>"
            "<button type='submit'>确认支付</button></form></main></body></html>")

    async def post(self, prepay_id: str) -> None:
        order = self.order(prepay_id)
        if order["trade_state"] == "CLOSED":
            return self.send(400, {"code": "ORDER_CLOSED", "message": "the order was closed"})
        if expired(order):
            return self.send(400, {"code": "ORDER_EXPIRED", "message": "the order has expired"})
        await self.gw.pay(order)
        back = self.get_body_argument("redirect_url", "")
        if back.startswith(("http://", "https://")):
            return self.redirect(back)
        self.send(200, {"order": self.gw.transaction(order)})


class SimLoginHandler(ControlHandler):
    """POST /sim/wx/login: what wx.login does on a phone, a code for this person."""

    def post(self) -> None:
        b = self.body_json()
        appid = b.get("appid") or next(iter(self.gw.apps))
        if appid not in self.gw.apps:
            return self.send(400, {"code": "PARAM_ERROR", "message": "unknown appid"})
        person = str(b.get("user") or uuid.uuid4().hex)
        self.send(200, {"code": self.gw.issue_code(appid, person)})


class SnsHandler(tornado.web.RequestHandler):
    """api.weixin.qq.com's /sns answers: always HTTP 200, errors as errcode."""

    def initialize(self, gw: Gateway, kind: str) -> None:
        self.gw = gw
        self.kind = kind

    def get(self) -> None:
        arg = self.get_query_argument
        appid, secret = arg("appid", ""), arg("secret", "")
        code = arg("js_code" if self.kind == "jscode2session" else "code", "")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        if appid not in self.gw.apps:
            return self.finish({"errcode": 40013, "errmsg": "invalid appid"})
        if secret != self.gw.apps[appid]:
            return self.finish({"errcode": 40125, "errmsg": "invalid appsecret"})
        if arg("grant_type", "") != "authorization_code":
            return self.finish({"errcode": 40002, "errmsg": "invalid grant_type"})
        found = self.gw.redeem(appid, code)
        if found is None:
            return self.finish({"errcode": 40029 if self.kind == "jscode2session" else 40163,
                                "errmsg": "invalid code"})
        openid, unionid = found
        if self.kind == "jscode2session":
            session_key = base64.b64encode(secrets.token_bytes(16)).decode()
            self.gw.session_keys.append(session_key)  # a test checks none leaks
            return self.finish({"openid": openid, "session_key": session_key,
                                "unionid": unionid})
        self.finish({"access_token": _nonce(64), "expires_in": 7200,
                     "refresh_token": _nonce(64), "openid": openid,
                     "scope": "snsapi_base", "unionid": unionid})


class OAuthAuthorizeHandler(tornado.web.RequestHandler):
    """open.weixin.qq.com's OAuth page: snsapi_base is silent, straight back
    with a code. The person is the `sim_user` query argument, else this
    browser's (a cookie), as one phone is one WeChat user."""

    def initialize(self, gw: Gateway) -> None:
        self.gw = gw

    def get(self) -> None:
        arg = self.get_query_argument
        appid, back = arg("appid", ""), arg("redirect_uri", "")
        if (appid not in self.gw.apps or arg("scope", "") != "snsapi_base"
                or arg("response_type", "") != "code"
                or not back.startswith(("http://", "https://"))):
            self.set_status(400)
            return self.finish("invalid OAuth request (appid, scope, response_type, redirect_uri)")
        person = arg("sim_user", "") or self.get_cookie("sim_wx_user") or uuid.uuid4().hex
        self.set_cookie("sim_wx_user", person)
        sep = "&" if "?" in back else "?"
        self.redirect(f"{back}{sep}code={self.gw.issue_code(appid, person)}"
                      f"&state={tornado.escape.url_escape(arg('state', ''), plus=False)}")


class SimExpireHandler(ControlHandler):
    def post(self) -> None:
        order = self.gw.orders.get(self.body_json().get("out_trade_no", ""))
        if order is None:
            return self.send(404, {"code": "ORDER_NOT_EXIST", "message": "no such order"})
        if order["trade_state"] not in ("NOTPAY", "CLOSED"):
            return self.send(400, {"code": "ORDERPAID", "message": "order already paid"})
        order["trade_state"] = "CLOSED"
        self.send(200, {"order": self.gw.transaction(order)})


class SimOrdersHandler(ControlHandler):
    def get(self) -> None:
        self.send(200, {"orders": list(self.gw.orders.values())})


class SimRefundsHandler(ControlHandler):
    def get(self) -> None:
        self.send(200, {"refunds": list(self.gw.refunds.values())})


class SimFailHandler(ControlHandler):
    def post(self) -> None:
        b = self.body_json()
        if b.get("clear"):
            self.gw.faults.clear()
            return self.send(200, {"pending_faults": 0})
        status = int(b.get("status", 500))
        code = b.get("code") or ("FREQUENCY_LIMITED" if status == 429 else "SYSTEM_ERROR")
        self.gw.faults.extend([(status, code)] * int(b.get("count", 1)))
        self.send(200, {"pending_faults": len(self.gw.faults)})


def make_app(gw: Gateway) -> tornado.web.Application:
    return gateway_app(gw, [
        (r"/v3/pay/transactions/jsapi", PrepayHandler),
        (r"/v3/pay/transactions/native", PrepayHandler, {"trade_type": "NATIVE"}),
        (r"/v3/pay/transactions/h5", PrepayHandler, {"trade_type": "H5"}),
        (r"/sns/jscode2session", SnsHandler, {"kind": "jscode2session"}),
        (r"/sns/oauth2/access_token", SnsHandler, {"kind": "oauth"}),
        (r"/connect/oauth2/authorize", OAuthAuthorizeHandler),
        (r"/sim/wx/login", SimLoginHandler),
        (r"/sim/h5/([0-9A-Za-z]+)", SimH5Handler),
        (r"/v3/pay/transactions/out-trade-no/([^/]+)/close", CloseHandler),
        (r"/v3/pay/transactions/out-trade-no/([^/]+)", QueryHandler),
        (r"/v3/refund/domestic/refunds", RefundHandler),
        (r"/sim/pay", SimPayHandler),
        (r"/sim/expire", SimExpireHandler),
        (r"/sim/orders", SimOrdersHandler),
        (r"/sim/refunds", SimRefundsHandler),
        (r"/sim/fail", SimFailHandler),
    ])


class SimulatorHandle(ThreadedServer):
    """The simulator on its own loop in a background thread; `.gateway` is its state."""

    def __init__(self, gateway: "Gateway", port: int, host: str) -> None:
        self.gateway = gateway
        super().__init__(make_app(gateway), port, host, name="wechat-sim")


def start_simulator(
    port: int = 0, keys_dir: Path | str = "var/wechat", host: str = "127.0.0.1",
    mchid: str = DEV_MCHID, apps: dict[str, str] | None = None,
) -> SimulatorHandle:
    """Start the simulator in a background thread; ``port=0`` picks a free port.
    ``apps``: appid -> secret of the WeChat apps whose users log in (default
    the dev app)."""
    return SimulatorHandle(Gateway(keys_dir, mchid, apps), port, host)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Local WeChat Pay API v3 gateway simulator")
    p.add_argument("--port", type=int, default=8890)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--keys", default="var/wechat", help="dev key directory (created once)")
    p.add_argument("--mchid", default=DEV_MCHID)
    p.add_argument("--app", action="append", default=[], metavar="APPID:SECRET",
                   help="a WeChat app whose users log in (default the dev app)")
    a = p.parse_args(argv)
    apps = dict(x.split(":", 1) for x in a.app if ":" in x) or None

    run_forever(make_app(Gateway(a.keys, a.mchid, apps)), a.port, a.host,
                f"WeChat Pay simulator on http://{a.host}:{a.port} (keys in {a.keys})")


if __name__ == "__main__":
    main()
