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
                                                   400 ORDER_CLOSED, a paid one ORDERPAID
  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=
  POST /v3/pay/transactions/out-trade-no/{no}/close  {mchid} -> 204; a paid order: ORDERPAID
  POST /v3/refund/domestic/refunds                idempotent by out_refund_no
Test controls (no auth):
  POST /sim/pay {out_trade_no, deliver?=true,     mark paid (a closed order: 400 ORDER_CLOSED),
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
from auction.wechatpay import DEV_MCHID, dev_keys

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

    def __init__(self, keys_dir: Path | str, mchid: str = DEV_MCHID) -> None:
        k = dev_keys(keys_dir)
        self.mchid = mchid
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
            "trade_type": "JSAPI",
            "trade_state": order["trade_state"],
            "trade_state_desc": {"NOTPAY": "未支付", "SUCCESS": "支付成功", "REFUND": "转入退款", "CLOSED": "已关闭"}[
                order["trade_state"]
            ],
            "attach": "",
            "payer": {"openid": order["openid"]},
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


class JsapiHandler(V3Handler):
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
            "payer.openid" if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str)
            or not payer["openid"] else
            None
        )
        if problem:
            return self.fail(400, "PARAM_ERROR", f"invalid {problem}")
        no = b["out_trade_no"]
        order = {
            "appid": b["appid"], "mchid": b["mchid"], "out_trade_no": no,
            "description": b["description"], "notify_url": b["notify_url"],
            "total": amount["total"], "openid": payer["openid"],
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
            return self.reply(200, {"prepay_id": old["prepay_id"]})
        order.update(
            prepay_id=f"wx{time.strftime('%d%H%M%S')}{secrets.token_hex(13)}",
            trade_state="NOTPAY", transaction_id=None, success_time=None,
            notification_id=None, refunded=0, created_ms=int(time.time() * 1000),
        )
        self.gw.orders[no] = order
        self.reply(200, {"prepay_id": order["prepay_id"]})


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


class SimPayHandler(ControlHandler):
    async def post(self) -> None:
        b = self.body_json()
        order = self.gw.orders.get(b.get("out_trade_no", ""))
        if order is None:
            return self.send(404, {"code": "ORDER_NOT_EXIST", "message": "no such order"})
        if order["trade_state"] == "CLOSED" and not b.get("after_close"):
            return self.send(400, {"code": "ORDER_CLOSED", "message": "the order was closed"})
        if order["trade_state"] in ("NOTPAY", "CLOSED"):
            order.update(
                trade_state="SUCCESS",
                transaction_id="4200" + "".join(secrets.choice(string.digits) for _ in range(24)),
                success_time=_now_rfc3339(),
                # Kept on the order: WeChat re-delivers with the same id.
                notification_id=str(uuid.uuid4()),
            )
        result: dict[str, Any] = {"notification_id": order["notification_id"], "status": None, "body": None}
        if b.get("deliver", True):
            body, headers = self.gw.notification(order)
            try:
                resp = await tornado.httpclient.AsyncHTTPClient().fetch(
                    order["notify_url"], method="POST", body=body, headers=headers,
                    request_timeout=10, raise_error=False,
                )
                result.update(status=resp.code, body=(resp.body or b"").decode("utf-8", "replace"))
            except Exception as exc:  # noqa: BLE001 - unreachable notify_url is a result
                result.update(status=599, body=str(exc))
        result["order"] = self.gw.transaction(order)
        self.send(200, result)


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
        (r"/v3/pay/transactions/jsapi", JsapiHandler),
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
    mchid: str = DEV_MCHID,
) -> SimulatorHandle:
    """Start the simulator in a background thread; ``port=0`` picks a free port."""
    return SimulatorHandle(Gateway(keys_dir, mchid), port, host)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Local WeChat Pay API v3 gateway simulator")
    p.add_argument("--port", type=int, default=8890)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--keys", default="var/wechat", help="dev key directory (created once)")
    p.add_argument("--mchid", default=DEV_MCHID)
    a = p.parse_args(argv)

    run_forever(make_app(Gateway(a.keys, a.mchid)), a.port, a.host,
                f"WeChat Pay simulator on http://{a.host}:{a.port} (keys in {a.keys})")


if __name__ == "__main__":
    main()
