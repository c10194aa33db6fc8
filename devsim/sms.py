"""Local Alibaba Cloud SMS (Dysmsapi 2017-05-25 ``SendSms``) gateway simulator.

Speaks the real protocol so ``workers/sms.py``'s ``AliyunSmsProvider`` runs
unchanged against it: every request must carry a valid V3 signature
(``Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..``
over the canonical request, HMAC-SHA256 with the AccessKey secret), a fresh
``x-acs-signature-nonce``, a recent ``x-acs-date`` and a matching
``x-acs-content-sha256``. The signing side is re-implemented here, not
imported, so a mistake in the client cannot be mirrored and go unnoticed.

Run:     python -m devsim.sms --port 8891
Import:  handle = start_simulator(0, key_id, key_secret); handle.url; handle.stop()

Gateway:
  POST /?PhoneNumbers=&SignName=&TemplateCode=&TemplateParam=&OutId=
       x-acs-action: SendSms, x-acs-version: 2017-05-25
       -> {"Code":"OK","Message":"OK","BizId","RequestId"}; refusals carry another Code
Test controls (no auth):
  GET  /sim/messages?phone=      messages delivered (optionally to one phone)
  GET  /sim/requests?phone=      every SendSms attempt with its HTTP status and Code
  POST /sim/fail {count?=1, status?=503, code?="ServiceUnavailable", phone?}
                                 the next `count` sends (to `phone`, if given) fail
  POST /sim/reset                forget everything
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from devsim.server import ControlHandler, ThreadedServer, gateway_app, run_forever

DEV_KEY_ID = "LTAI5tDevSmsSimulator"
DEV_KEY_SECRET = "dev-sms-simulator-secret"
AUTH = re.compile(r"^ACS3-HMAC-SHA256 Credential=([^,\s]+),SignedHeaders=([a-z0-9\-;]+),"
                  r"Signature=([0-9a-f]{64})$")
REQUIRED_SIGNED = {"host", "x-acs-action", "x-acs-version", "x-acs-date",
                   "x-acs-signature-nonce", "x-acs-content-sha256"}
PHONE = re.compile(r"^(\+?86)?1[3-9][0-9]{9}$")
TEMPLATE = re.compile(r"^SMS_[0-9]{3,}$")
UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
MAX_SKEW_S = 15 * 60


def rfc3986(text: str) -> str:
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode())


def unpercent(text: str) -> str:
    raw = bytearray()
    i, data = 0, text.encode()
    while i < len(data):
        if data[i] == 0x25 and i + 2 < len(data) and re.fullmatch(
                rb"[0-9A-Fa-f]{2}", data[i + 1:i + 3]):
            raw.append(int(data[i + 1:i + 3], 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return raw.decode("utf-8", "replace")


class Gateway:
    def __init__(self, key_id: str, key_secret: str) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages: list[dict] = []
            self.requests: list[dict] = []
            self.faults: list[dict] = []
            self.nonces: dict[str, float] = {}

    def take_fault(self, phone: str) -> dict | None:
        with self.lock:
            for i, f in enumerate(self.faults):
                if f.get("phone") in (None, phone):
                    return self.faults.pop(i)
        return None

    def check_signature(self, req: Any) -> tuple[int, str, str] | None:
        """None if the request is properly signed, else (status, code, message)."""
        m = AUTH.match(req.headers.get("Authorization", ""))
        if not m:
            return 400, "IncompleteSignature", "the Authorization header is missing or malformed"
        credential, signed_names, signature = m.groups()
        if credential != self.key_id:
            return 404, "InvalidAccessKeyId.NotFound", "unknown AccessKeyId"
        signed = signed_names.split(";")
        if signed != sorted(signed) or not REQUIRED_SIGNED <= set(signed):
            return 400, "IncompleteSignature", "SignedHeaders must be sorted and complete"
        present = {k.lower() for k in req.headers.keys()}
        unsigned = {k for k in present if k.startswith("x-acs-")} - set(signed)
        if unsigned or not set(signed) <= present:
            return 400, "IncompleteSignature", "every x-acs-* header must be signed and sent"
        body_hash = hashlib.sha256(req.body or b"").hexdigest()
        if req.headers.get("x-acs-content-sha256") != body_hash:
            return 400, "ContentSHA256NotMatch", "x-acs-content-sha256 does not match the body"
        try:
            when = datetime.strptime(req.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return 400, "InvalidTimeStamp.Format", "x-acs-date is not yyyy-MM-ddTHH:mm:ssZ"
        if abs(when.replace(tzinfo=timezone.utc).timestamp() - time.time()) > MAX_SKEW_S:
            return 400, "InvalidTimeStamp.Expired", "x-acs-date is too far from now"
        pairs = []
        for part in (req.query or "").split("&"):
            if part:
                k, _, v = part.partition("=")
                pairs.append((rfc3986(unpercent(k)), rfc3986(unpercent(v))))
        canonical = "\n".join([
            req.method, req.path or "/", "&".join(f"{k}={v}" for k, v in sorted(pairs)),
            "".join(f"{k}:{req.headers.get(k, '').strip()}\n" for k in signed),
            signed_names, body_hash,
        ])
        string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(self.key_secret.encode(), string_to_sign.encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return 400, "SignatureDoesNotMatch", "the request signature does not conform"
        nonce = req.headers["x-acs-signature-nonce"]
        now = time.time()
        with self.lock:
            self.nonces = {n: t for n, t in self.nonces.items() if now - t < MAX_SKEW_S}
            if nonce in self.nonces:
                return 400, "SignatureNonceUsed", "the signature nonce has been used"
            self.nonces[nonce] = now
        return None


class SendSmsHandler(tornado.web.RequestHandler):
    def initialize(self, gw: Gateway) -> None:
        self.gw = gw

    def answer(self, status: int, code: str, message: str, phone: str = "", **extra: Any) -> None:
        body = {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message, **extra}
        with self.gw.lock:
            self.gw.requests.append({"phone": phone, "status": status, "code": code,
                                     "at_ms": int(time.time() * 1000)})
        self.set_status(status)
        self.set_header("Content-Type", "application/json;charset=utf-8")
        self.finish(json.dumps(body, ensure_ascii=False))

    def post(self) -> None:
        phone = self.get_query_argument("PhoneNumbers", "")
        fault = self.gw.take_fault(phone)
        if fault is not None:
            return self.answer(fault["status"], fault["code"], "injected fault", phone)
        problem = self.gw.check_signature(self.request)
        if problem:
            return self.answer(*problem, phone=phone)
        if self.request.headers.get("x-acs-action") != "SendSms":
            return self.answer(400, "InvalidAction.NotFound", "unknown action", phone)
        if self.request.headers.get("x-acs-version") != "2017-05-25":
            return self.answer(400, "InvalidVersion", "unknown API version", phone)
        sign_name = self.get_query_argument("SignName", "")
        template = self.get_query_argument("TemplateCode", "")
        raw_params = self.get_query_argument("TemplateParam", "")
        if not PHONE.match(phone):
            return self.answer(200, "isv.MOBILE_NUMBER_ILLEGAL", "invalid phone number", phone)
        if not sign_name:
            return self.answer(200, "isv.SMS_SIGNATURE_ILLEGAL", "missing SignName", phone)
        if not TEMPLATE.match(template):
            return self.answer(200, "isv.SMS_TEMPLATE_ILLEGAL", "unknown TemplateCode", phone)
        try:
            params = json.loads(raw_params) if raw_params else {}
        except ValueError:
            params = None
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return self.answer(200, "isv.INVALID_JSON_PARAM", "TemplateParam must be a JSON "
                                                              "object of strings", phone)
        biz_id = f"{int(time.time() * 1000)}^{secrets.randbelow(10**10):010d}"
        with self.gw.lock:
            self.gw.messages.append({
                "phone": phone, "sign_name": sign_name, "template_code": template,
                "params": params, "out_id": self.get_query_argument("OutId", ""),
                "biz_id": biz_id, "at_ms": int(time.time() * 1000)})
        self.answer(200, "OK", "OK", phone, BizId=biz_id)


class SmsControlHandler(ControlHandler):
    def _filtered(self, rows: list[dict]) -> list[dict]:
        phone = self.get_query_argument("phone", None)
        with self.gw.lock:
            return [r for r in rows if phone is None or r["phone"] == phone]


class MessagesHandler(SmsControlHandler):
    def get(self) -> None:
        self.send(200, {"messages": self._filtered(self.gw.messages)})


class RequestsHandler(SmsControlHandler):
    def get(self) -> None:
        self.send(200, {"requests": self._filtered(self.gw.requests)})


class FailHandler(SmsControlHandler):
    def post(self) -> None:
        b = self.body_json()
        fault = {"status": int(b.get("status", 503)),
                 "code": str(b.get("code") or "ServiceUnavailable"), "phone": b.get("phone")}
        with self.gw.lock:
            self.gw.faults.extend(dict(fault) for _ in range(int(b.get("count", 1))))
            pending = len(self.gw.faults)
        self.send(200, {"pending_faults": pending})


def make_app(gw: Gateway) -> tornado.web.Application:
    return gateway_app(gw, [
        (r"/", SendSmsHandler),
        (r"/sim/messages", MessagesHandler),
        (r"/sim/requests", RequestsHandler),
        (r"/sim/fail", FailHandler),
    ])


class SimulatorHandle(ThreadedServer):
    """The simulator on its own loop in a background thread; `.gateway` is its state."""

    def __init__(self, gateway: "Gateway", port: int, host: str, key_id: str,
                 key_secret: str) -> None:
        self.gateway = gateway
        self.key_id = key_id
        self.key_secret = key_secret
        super().__init__(make_app(gateway), port, host, name="sms-sim")


def start_simulator(port: int = 0, key_id: str = DEV_KEY_ID, key_secret: str = DEV_KEY_SECRET,
                    host: str = "127.0.0.1") -> SimulatorHandle:
    """Start the simulator in a background thread; ``port=0`` picks a free port."""
    return SimulatorHandle(Gateway(key_id, key_secret), port, host, key_id, key_secret)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Local Alibaba Cloud SMS (SendSms) simulator")
    p.add_argument("--port", type=int, default=8891)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--key-id", default=DEV_KEY_ID)
    p.add_argument("--key-secret", default=DEV_KEY_SECRET)
    a = p.parse_args(argv)

    run_forever(make_app(Gateway(a.key_id, a.key_secret)), a.port, a.host,
                f"SMS simulator on http://{a.host}:{a.port} (AccessKeyId {a.key_id})")


if __name__ == "__main__":
    main()
