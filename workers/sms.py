"""SMS providers for the notification worker.

``get_provider()`` picks one by ``settings.SMS_PROVIDER``:

``console`` (default)
    Logs each message (phone masked) and returns a made-up id. For dev.

``aliyun``
    Alibaba Cloud SMS (短信服务, product Dysmsapi, API version 2017-05-25),
    action ``SendSms``, signed with the V3 signature ``ACS3-HMAC-SHA256``:

    ``POST {SMS_API_BASE}/?PhoneNumbers=..&SignName=..&TemplateCode=..&TemplateParam=..&OutId=..``
    with an empty body and the headers ``host``, ``x-acs-action: SendSms``,
    ``x-acs-version: 2017-05-25``, ``x-acs-date`` (UTC, ``2024-01-01T00:00:00Z``),
    ``x-acs-signature-nonce`` (unique per request), ``x-acs-content-sha256``
    (hex SHA-256 of the body) and::

        Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2..>,Signature=<hex>

    where, with every name and value percent-encoded per RFC 3986 (space
    ``%20``, ``*`` ``%2A``, ``~`` kept)::

        CanonicalRequest = METHOD \\n "/" \\n sorted "k=v" joined by "&" \\n
                           "name:value\\n" for each signed header (lower-case, sorted) \\n
                           signed header names joined by ";" \\n hex(sha256(body))
        Signature = hex(HMAC-SHA256(AccessKeySecret,
                        "ACS3-HMAC-SHA256\\n" + hex(sha256(CanonicalRequest))))

    The answer is JSON ``{"Code": "OK", "Message": "OK", "BizId": .., "RequestId": ..}``;
    any other ``Code`` is a refusal. ``tests/sms_sim.py`` implements the gateway
    side independently (it verifies the signature), so tests run this code.

Error model (same as workers/wechatpay.py): ``SmsError(code, message, status)``
for a refusal that will not change by retrying (bad phone number, unknown
template); its subclass ``SmsUnavailable`` for network errors, timeouts,
HTTP 429/5xx and throttling codes, which the task retries with exponential
backoff. A send never runs inside the hall or the bid path: a failing provider
only delays messages in the ``notify`` queue.

Plain blocking module (``requests``); under ``-P eventlet`` the sockets are
cooperative. It must not import celery, eventlet or tornado.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from typing import Any, Mapping, Protocol
from urllib.parse import quote, urlsplit

import requests

import settings
from auction.errors import GatewayError

logger = logging.getLogger(__name__)

ALGORITHM = "ACS3-HMAC-SHA256"
ACTION = "SendSms"
VERSION = "2017-05-25"
# Codes Alibaba Cloud answers for overload and flow control: worth retrying.
RETRYABLE_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "ServiceUnavailable",
                   "InternalError", "SignatureNonceUsed"}


class SmsError(GatewayError):
    """The provider refused the message; retrying will not help."""


class SmsUnavailable(SmsError):
    """Transient: network, timeout, 429, 5xx, throttling. Retry with the same OutId."""


class SmsProvider(Protocol):
    name: str

    def send(self, phone: str, template: str, params: Mapping[str, Any], out_id: str) -> str:
        """Send one message; return the provider's message id, or raise SmsError."""


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


class ConsoleProvider:
    """Writes messages to the log instead of sending them."""
    name = "console"

    def send(self, phone: str, template: str, params: Mapping[str, Any], out_id: str) -> str:
        logger.warning("SMS to %s [%s] %s (out_id %s)", mask_phone(phone), template,
                       json.dumps(dict(params), ensure_ascii=False), out_id)
        return f"console-{uuid.uuid4().hex[:16]}"


# -- Alibaba Cloud V3 signature -------------------------------------------------

def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud specifies it (only A-Z a-z 0-9 - _ . ~ kept)."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign_request(method: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes,
                 key_id: str, key_secret: str) -> str:
    """The Authorization header value for a request with these parts."""
    lower = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed = sorted(k for k in lower if k == "host" or k == "content-type" or k.startswith("x-acs-"))
    canonical = "\n".join([
        method.upper(), "/", canonical_query(query),
        "".join(f"{k}:{lower[k]}\n" for k in signed),
        ";".join(signed), hashlib.sha256(body).hexdigest(),
    ])
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={key_id},SignedHeaders={';'.join(signed)},Signature={signature}"


class AliyunSmsProvider:
    """Alibaba Cloud SMS ``SendSms`` over HTTPS (the protocol above)."""
    name = "aliyun"

    def __init__(self, api_base: str, key_id: str, key_secret: str, sign_name: str,
                 templates: Mapping[str, str], timeout: float = 5.0) -> None:
        if not (api_base and key_id and key_secret and sign_name):
            raise SmsError("config", "SMS_API_BASE, SMS_ACCESS_KEY_ID, SMS_ACCESS_KEY_SECRET "
                                     "and SMS_SIGN_NAME are required for SMS_PROVIDER=aliyun")
        self.api_base = api_base.rstrip("/")
        self.host = urlsplit(self.api_base).netloc
        self.key_id = key_id
        self.key_secret = key_secret
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.timeout = timeout
        self.http = requests.Session()

    def send(self, phone: str, template: str, params: Mapping[str, Any], out_id: str) -> str:
        code = self.templates.get(template)
        if not code:
            raise SmsError("template", f"no template code configured for {template!r}")
        query = {
            "PhoneNumbers": phone,
            "SignName": self.sign_name,
            "TemplateCode": code,
            # Template variables are strings on Alibaba Cloud's side.
            "TemplateParam": json.dumps({k: str(v) for k, v in params.items()},
                                        ensure_ascii=False, separators=(",", ":")),
            "OutId": out_id[:256],
        }
        body = b""
        headers = {
            "host": self.host,
            "x-acs-action": ACTION,
            "x-acs-version": VERSION,
            "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "x-acs-signature-nonce": secrets.token_hex(16),
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        headers["Authorization"] = sign_request("POST", query, headers, body, self.key_id,
                                                self.key_secret)
        url = f"{self.api_base}/?{canonical_query(query)}"
        try:
            resp = self.http.post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SmsUnavailable("network", f"{type(exc).__name__}: {exc}"[:300]) from exc
        try:
            answer = resp.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        code_ = str(answer.get("Code") or f"HTTP{resp.status_code}")
        message = str(answer.get("Message") or resp.reason or "")[:300]
        if resp.status_code == 200 and code_ == "OK":
            return str(answer.get("BizId") or answer.get("RequestId") or "")
        if (resp.status_code == 429 or resp.status_code >= 500 or code_ in RETRYABLE_CODES
                or code_.startswith("Throttling")):
            raise SmsUnavailable(code_, message, resp.status_code)
        raise SmsError(code_, message, resp.status_code)


_provider: SmsProvider | None = None


def get_provider() -> SmsProvider:
    """The configured provider (one per process)."""
    global _provider
    if _provider is None:
        kind = settings.SMS_PROVIDER.lower()
        if kind in ("aliyun", "http"):
            _provider = AliyunSmsProvider(settings.SMS_API_BASE, settings.SMS_ACCESS_KEY_ID,
                                          settings.SMS_ACCESS_KEY_SECRET, settings.SMS_SIGN_NAME,
                                          settings.SMS_TEMPLATES, settings.SMS_TIMEOUT_S)
        elif kind == "console":
            _provider = ConsoleProvider()
        else:
            raise SmsError("config", f"unknown SMS_PROVIDER {settings.SMS_PROVIDER!r}")
    return _provider

# The generic name: the HTTP provider speaks the Alibaba Cloud protocol.
HttpSmsProvider = AliyunSmsProvider
