"""WeChat Pay API v3: the client (workers) and the notification check (hall).

Speaks the real v3 protocol: every request carries a
``WECHATPAY2-SHA256-RSA2048`` Authorization header signed with the merchant
private key, every response and notification is checked against the platform
public key, and notification resources are AEAD_AES_256_GCM-decrypted with the
APIv3 key. In dev and tests the gateway is ``devsim/wechatpay.py``, which
re-implements the gateway side independently, so the tests exercise exactly
this code path.

The workers call the gateway (blocking ``requests``; eventlet's monkey
patching makes the sockets cooperative there); the hall only verifies and
decrypts notifications (``parse_notification``), which needs no network.
It must not import celery, eventlet or tornado.

Error model: ``WeChatPayError(code, message, status)`` for anything the gateway
refused; its subclass ``WeChatPayUnavailable`` for failures worth retrying
(network errors, timeouts, HTTP 429 and 5xx), so a task can
``autoretry_for=(WeChatPayUnavailable,)`` and let everything else fail.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auction.errors import GatewayError
from auction.keyfiles import create_once

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
DEV_APPID = "wx-dev-appid"
DEV_MCHID = "1900000001"
# The gateway and the real SDKs reject signed messages older/newer than 5 min.
MAX_SKEW_S = 300

_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")


# --------------------------------------------------------------------------- errors


class WeChatPayError(GatewayError):
    """The gateway (or our checks of its answer) refused the operation."""


class WeChatPayUnavailable(WeChatPayError):
    """Transient failure (network, timeout, 429, 5xx): safe to retry with the same ids."""


class WeChatPayConfigError(WeChatPayError):
    """WeChat Pay is not configured (missing keys, serials or API base)."""


class InvalidNotification(Exception):
    """A payment notification failed verification; answer 401 and change nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- keys


def load_private_key(key: bytes | str | rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM (bytes/str) or return it if already loaded."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    data = key.encode() if isinstance(key, str) else key
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("WeChat Pay v3 needs an RSA private key")
    return loaded


def load_public_key(key: bytes | str | rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    """Load an RSA public key from a public-key PEM or a platform certificate PEM."""
    if isinstance(key, rsa.RSAPublicKey):
        return key
    data = key.encode() if isinstance(key, str) else key
    # Older merchants get platform *certificates*, newer ones a bare "WeChat Pay
    # public key"; both carry the same RSA key.
    if b"BEGIN CERTIFICATE" in data:
        loaded = x509.load_pem_x509_certificate(data).public_key()
    else:
        loaded = serialization.load_pem_public_key(data)
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay v3 needs an RSA public key")
    return loaded


def generate_keypair(bits: int = 2048) -> tuple[bytes, bytes]:
    """Make a fresh RSA key pair for dev/test: ``(private_pem, public_pem)``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _private_pem(key), _public_pem(key.public_key())


def key_serial(public_key: bytes | str | rsa.RSAPublicKey) -> str:
    """A stable 40-hex-digit serial for a dev key (real serials come from WeChat)."""
    der = load_public_key(public_key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:40].upper()


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------- signatures


def _message(*parts: str | bytes) -> bytes:
    """v3 signing string: every part followed by a newline, the last one too."""
    return b"".join((p.encode() if isinstance(p, str) else p) + b"\n" for p in parts)


def sign(private_key: rsa.RSAPrivateKey, *parts: str | bytes) -> str:
    """RSA-SHA256 (PKCS#1 v1.5) over the v3 signing string, base64."""
    sig = private_key.sign(_message(*parts), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


def verify(public_key: rsa.RSAPublicKey, signature_b64: str, *parts: str | bytes) -> bool:
    """True if ``signature_b64`` signs the v3 signing string of ``parts``."""
    try:
        sig = base64.b64decode(signature_b64, validate=True)
        public_key.verify(sig, _message(*parts), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def nonce_str(n: int = 32) -> str:
    """Random alphanumeric nonce, as the v3 docs use (32 chars)."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------------------- config


@dataclass
class WeChatPayConfig:
    """Everything the client needs; keys may be PEM bytes or loaded keys."""

    api_base: str
    appid: str
    mchid: str
    serial_no: str  # serial of the merchant API certificate (our key)
    private_key: Any  # merchant private key: PEM bytes/str or RSAPrivateKey
    platform_public_key: Any  # WeChat's key: PEM (key or certificate) or RSAPublicKey
    platform_serial: str  # serial WeChat puts in Wechatpay-Serial
    apiv3_key: str  # 32-byte symmetric key for resource decryption
    notify_url: str
    timeout_s: float = 10.0
    # The app ids besides `appid` whose users may pay (the mini-program and
    # the official account): a JSAPI payment uses the app id of the payer's
    # openid, and its notification carries that app id.
    other_appids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Load once here so a bad key fails at start-up, not on the first payment.
        self.private_key = load_private_key(self.private_key)
        self.platform_public_key = load_public_key(self.platform_public_key)
        if len(self.apiv3_key.encode()) != 32:
            raise WeChatPayConfigError("NOT_CONFIGURED", "the APIv3 key must be 32 bytes")

    @classmethod
    def from_settings(cls, settings_module: Any = None) -> "WeChatPayConfig":
        """Build the config from ``settings.WECHAT_*``.

        With no key paths set and ``HALL_ENV`` not ``production``, falls back to
        the dev keys in ``DATA_DIR/wechat`` (created once by :func:`dev_config`),
        the same directory the local simulator is pointed at.
        """
        if settings_module is None:
            import settings as settings_module  # noqa: PLC0415 - a test may pass its own
        s = settings_module
        if not s.WECHAT_PRIVATE_KEY_PATH:
            if s.HALL_ENV == "production":
                raise WeChatPayConfigError(
                    "NOT_CONFIGURED", "WECHAT_PRIVATE_KEY_PATH is required in production"
                )
            return dev_config(
                Path(s.DATA_DIR) / "wechat",
                api_base=s.WECHAT_API_BASE,
                notify_url=s.WECHAT_NOTIFY_URL,
                appid=s.WECHAT_APPID,
                mchid=s.WECHAT_MCHID,
                other_appids=_login_appids(s),
            )
        missing = [
            name
            for name in (
                "WECHAT_API_BASE",
                "WECHAT_SERIAL_NO",
                "WECHAT_PLATFORM_PUBLIC_KEY_PATH",
                "WECHAT_PLATFORM_SERIAL",
                "WECHAT_APIV3_KEY",
                "WECHAT_NOTIFY_URL",
            )
            if not getattr(s, name)
        ]
        if missing:
            raise WeChatPayConfigError("NOT_CONFIGURED", "missing " + ", ".join(missing))
        return cls(
            api_base=s.WECHAT_API_BASE,
            appid=s.WECHAT_APPID,
            mchid=s.WECHAT_MCHID,
            serial_no=s.WECHAT_SERIAL_NO,
            private_key=Path(s.WECHAT_PRIVATE_KEY_PATH).read_bytes(),
            platform_public_key=Path(s.WECHAT_PLATFORM_PUBLIC_KEY_PATH).read_bytes(),
            platform_serial=s.WECHAT_PLATFORM_SERIAL,
            apiv3_key=s.WECHAT_APIV3_KEY,
            notify_url=s.WECHAT_NOTIFY_URL,
            other_appids=_login_appids(s),
        )


def _login_appids(s: Any) -> tuple[str, ...]:
    return tuple(a for a in (getattr(s, "WECHAT_MINI_APPID", ""), getattr(s, "WECHAT_OA_APPID", ""))
                 if a and a != s.WECHAT_APPID)


@dataclass(frozen=True)
class DevKeys:
    """The key material of a dev/test merchant and of the simulated platform."""

    merchant_private_pem: bytes
    merchant_public_pem: bytes
    merchant_serial: str
    platform_private_pem: bytes
    platform_public_pem: bytes
    platform_serial: str
    apiv3_key: str


def dev_keys(directory: Path | str) -> DevKeys:
    """Create (once) and load dev key material in ``directory``.

    Only private keys and the APIv3 key are stored; public keys and serials are
    derived from them, so concurrent first runs cannot pair mismatched halves.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name in ("merchant_private.pem", "platform_private.pem"):
        if not (d / name).exists():
            create_once(d / name, generate_keypair()[0])
    create_once(d / "apiv3_key.txt", secrets.token_hex(16).encode())  # 32 chars

    merchant = load_private_key((d / "merchant_private.pem").read_bytes())
    platform = load_private_key((d / "platform_private.pem").read_bytes())
    merchant_pub = _public_pem(merchant.public_key())
    platform_pub = _public_pem(platform.public_key())
    # Public halves on disk are a convenience for tools (WECHAT_*_PATH); rewriting
    # them with identical content is harmless.
    (d / "merchant_public.pem").write_bytes(merchant_pub)
    (d / "platform_public.pem").write_bytes(platform_pub)
    return DevKeys(
        merchant_private_pem=_private_pem(merchant),
        merchant_public_pem=merchant_pub,
        merchant_serial=key_serial(merchant_pub),
        platform_private_pem=_private_pem(platform),
        platform_public_pem=platform_pub,
        platform_serial=key_serial(platform_pub),
        apiv3_key=(d / "apiv3_key.txt").read_text().strip(),
    )


def dev_config(
    directory: Path | str,
    *,
    api_base: str = "",
    notify_url: str = "",
    appid: str = DEV_APPID,
    mchid: str = DEV_MCHID,
    other_appids: tuple[str, ...] = (),
) -> WeChatPayConfig:
    """Merchant config over the dev keys in ``directory`` (see :func:`dev_keys`)."""
    k = dev_keys(directory)
    return WeChatPayConfig(
        api_base=api_base,
        appid=appid,
        mchid=mchid,
        serial_no=k.merchant_serial,
        private_key=k.merchant_private_pem,
        platform_public_key=k.platform_public_pem,
        platform_serial=k.platform_serial,
        apiv3_key=k.apiv3_key,
        notify_url=notify_url,
        other_appids=other_appids,
    )


# --------------------------------------------------------------------------- client


def build_authorization(
    config: WeChatPayConfig,
    method: str,
    url_path: str,
    body: bytes,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header value for one request.

    ``url_path`` is the absolute path with its query string, exactly as sent.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or nonce_str()
    signature = sign(config.private_key, method.upper(), url_path, ts, nonce, body)
    return (
        f'{AUTH_SCHEMA} mchid="{config.mchid}",nonce_str="{nonce}",'
        f'signature="{signature}",timestamp="{ts}",serial_no="{config.serial_no}"'
    )


def rfc3339(ms: int) -> str:
    """Epoch milliseconds as WeChat Pay writes times: ``2026-12-01T20:15:00+08:00``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(ms // 1000 + 8 * 3600))


class WeChatPayClient:
    """Blocking WeChat Pay v3 client (JSAPI prepay, refund, order query)."""

    def __init__(self, config: WeChatPayConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()

    # ---------------------------------------------------------------- operations

    def jsapi_prepay(
        self, out_trade_no: str, description: str, amount_fen: int, openid: str,
        appid: str | None = None, expires_ms: int | None = None,
    ) -> dict[str, str]:
        """Create a JSAPI order; return the mini-program's ``wx.requestPayment`` params.

        ``openid`` is the payer's, as WeChat gave it for ``appid`` (the
        mini-program's or the official account's; default the config's).
        Returns ``{appId, timeStamp, nonceStr, package, signType, paySign, prepay_id}``.
        Calling again with the same ``out_trade_no`` and parameters is safe: the
        gateway answers with the existing prepay_id.
        """
        if not openid:
            raise ValueError("openid is required for a JSAPI payment")
        appid = appid or self.config.appid
        payload = self._order(out_trade_no, description, amount_fen, appid, expires_ms)
        payload["payer"] = {"openid": openid}
        answer = self._request("POST", "/v3/pay/transactions/jsapi", payload)
        prepay_id = answer.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise WeChatPayError("INVALID_RESPONSE", "no prepay_id in the answer", 200)
        params = self.client_pay_params(prepay_id, appid)
        params["prepay_id"] = prepay_id
        return params

    def native_prepay(self, out_trade_no: str, description: str, amount_fen: int,
                      expires_ms: int | None = None) -> str:
        """Create a Native order (a desktop page shows it as a QR code): its ``code_url``.

        The same ``out_trade_no`` and parameters again answer the same code_url.
        """
        payload = self._order(out_trade_no, description, amount_fen, self.config.appid,
                              expires_ms)
        answer = self._request("POST", "/v3/pay/transactions/native", payload)
        code_url = answer.get("code_url")
        if not isinstance(code_url, str) or not code_url.startswith("weixin://"):
            raise WeChatPayError("INVALID_RESPONSE", "no code_url in the answer", 200)
        return code_url

    def h5_prepay(self, out_trade_no: str, description: str, amount_fen: int,
                  payer_client_ip: str, expires_ms: int | None = None) -> str:
        """Create an H5 order (a phone browser outside WeChat): its ``h5_url``.

        The gateway wants the payer's address (scene_info), as the hall saw it.
        """
        if not payer_client_ip:
            raise ValueError("payer_client_ip is required for an H5 payment")
        payload = self._order(out_trade_no, description, amount_fen, self.config.appid,
                              expires_ms)
        payload["scene_info"] = {"payer_client_ip": payer_client_ip,
                                 "h5_info": {"type": "Wap"}}
        answer = self._request("POST", "/v3/pay/transactions/h5", payload)
        h5_url = answer.get("h5_url")
        if not isinstance(h5_url, str) or not h5_url.startswith(("https://", "http://")):
            raise WeChatPayError("INVALID_RESPONSE", "no h5_url in the answer", 200)
        return h5_url

    def _order(self, out_trade_no: str, description: str, amount_fen: int,
               appid: str, expires_ms: int | None = None) -> dict[str, Any]:
        """The fields every scene's prepay sends; ``expires_ms`` (epoch ms) is
        the order's ``time_expire``: after it the payer can no longer pay
        (unset: the gateway's own default, two hours)."""
        _check_out_trade_no(out_trade_no)
        _check_fen("amount_fen", amount_fen)
        if not self.config.notify_url:
            raise WeChatPayConfigError("NOT_CONFIGURED", "WECHAT_NOTIFY_URL is not set")
        order: dict[str, Any] = {
            "appid": appid,
            "mchid": self.config.mchid,
            # The gateway caps description at 127 characters; a long lot title
            # must not make the payment fail.
            "description": (description or out_trade_no)[:127],
            "out_trade_no": out_trade_no,
            "notify_url": self.config.notify_url,
            "amount": {"total": amount_fen, "currency": "CNY"},
        }
        if expires_ms is not None:
            order["time_expire"] = rfc3339(expires_ms)
        return order

    def client_pay_params(self, prepay_id: str, appid: str | None = None) -> dict[str, str]:
        """Sign the parameters the mini-program passes to ``wx.requestPayment``."""
        appid = appid or self.config.appid
        ts = str(int(time.time()))
        nonce = nonce_str()
        package = f"prepay_id={prepay_id}"
        pay_sign = sign(self.config.private_key, appid, ts, nonce, package)
        return {
            "appId": appid,
            "timeStamp": ts,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }

    def refund(
        self,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str = "",
    ) -> dict[str, Any]:
        """Refund ``refund_fen`` of a paid order; returns the gateway's refund record.

        The gateway is idempotent by ``out_refund_no``: retrying with the same
        number never refunds twice, so derive it from our own ledger id. The
        answer's ``status`` may be ``SUCCESS`` or ``PROCESSING``; both mean the
        refund was accepted.
        """
        _check_out_trade_no(out_trade_no)
        if not _OUT_REFUND_NO.fullmatch(out_refund_no or ""):
            raise ValueError(f"bad out_refund_no {out_refund_no!r}")
        _check_fen("refund_fen", refund_fen)
        _check_fen("total_fen", total_fen)
        payload: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"},
        }
        if reason:
            payload["reason"] = reason[:80]  # gateway limit; the reason is cosmetic
        return self._request("POST", "/v3/refund/domestic/refunds", payload)

    def query_order(self, out_trade_no: str) -> dict[str, Any]:
        """The gateway's view of an order (``trade_state``: NOTPAY, SUCCESS, REFUND, ...).

        Use it to reconcile when a notification may have been lost.
        """
        _check_out_trade_no(out_trade_no)
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
            f"?mchid={quote(self.config.mchid, safe='')}"
        )
        return self._request("GET", path)

    def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order (204): the payer can no longer pay it.

        Closing a paid order is refused (WeChatPayError); query it to learn why.
        """
        _check_out_trade_no(out_trade_no)
        self._request("POST", f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
                              "/close", {"mchid": self.config.mchid})

    # ---------------------------------------------------------------- transport

    def _request(self, method: str, path: str, payload: dict | None = None) -> dict[str, Any]:
        if not self.config.api_base:
            raise WeChatPayConfigError("NOT_CONFIGURED", "WECHAT_API_BASE is not set")
        url = self.config.api_base.rstrip("/") + path
        # Serialise once and send exactly these bytes: the signature covers the
        # body byte for byte, so letting requests re-encode it would break it.
        body = (
            b""
            if payload is None
            else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        )
        parts = urlsplit(url)
        canonical = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Authorization": build_authorization(self.config, method, canonical, body),
            "Accept": "application/json",
            # The real gateway refuses requests without a User-Agent.
            "User-Agent": f"auction-hall-wechatpay/1.0 requests/{requests.__version__}",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = self.session.request(
                method, url, data=body if payload is not None else None,
                headers=headers, timeout=self.config.timeout_s,
            )
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise WeChatPayUnavailable("NETWORK_ERROR", str(exc)) from exc
        except requests.RequestException as exc:  # bad URL etc.: retrying won't help
            raise WeChatPayError("REQUEST_FAILED", str(exc)) from exc

        if resp.status_code >= 300:
            # Error answers are not trusted for anything but the error itself,
            # so they are not required to carry a valid signature.
            code, message = _error_fields(resp)
            cls = WeChatPayUnavailable if resp.status_code >= 500 or resp.status_code == 429 else WeChatPayError
            raise cls(code, message, resp.status_code)

        self._verify_response(resp)
        if not resp.content:
            return {}
        try:
            data = json.loads(resp.content)
        except ValueError as exc:
            raise WeChatPayError("INVALID_RESPONSE", "answer is not JSON", resp.status_code) from exc
        if not isinstance(data, dict):
            raise WeChatPayError("INVALID_RESPONSE", "answer is not an object", resp.status_code)
        return data

    def _verify_response(self, resp: requests.Response) -> None:
        """Reject a success answer not signed by the platform key (spoofed gateway)."""
        h = resp.headers
        ts, nonce = h.get("Wechatpay-Timestamp", ""), h.get("Wechatpay-Nonce", "")
        signature, serial = h.get("Wechatpay-Signature", ""), h.get("Wechatpay-Serial", "")
        status = resp.status_code
        if not (ts and nonce and signature and serial):
            raise WeChatPayError("INVALID_RESPONSE_SIGNATURE", "unsigned answer", status)
        if serial != self.config.platform_serial:
            # A rotated platform key shows up here; the new key must be installed.
            raise WeChatPayError(
                "INVALID_RESPONSE_SIGNATURE", f"unknown platform serial {serial}", status
            )
        if not ts.isdigit() or abs(int(time.time()) - int(ts)) > MAX_SKEW_S:
            raise WeChatPayError("INVALID_RESPONSE_SIGNATURE", "stale answer timestamp", status)
        if not verify(self.config.platform_public_key, signature, ts, nonce, resp.content):
            raise WeChatPayError("INVALID_RESPONSE_SIGNATURE", "bad answer signature", status)


def _error_fields(resp: requests.Response) -> tuple[str, str]:
    try:
        data = resp.json()
        return str(data.get("code") or f"HTTP_{resp.status_code}"), str(data.get("message") or "")
    except (ValueError, AttributeError):
        return f"HTTP_{resp.status_code}", resp.text[:200]


def _check_fen(name: str, value: Any) -> None:
    # bool is an int subclass; True fen is a bug, not one fen.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer number of fen")


def _check_out_trade_no(value: str) -> None:
    if not _OUT_TRADE_NO.fullmatch(value or ""):
        raise ValueError(f"out_trade_no must be 6-32 of [0-9A-Za-z_-|*], got {value!r}")


# --------------------------------------------------------------------------- notifications


def parse_notification(
    config: WeChatPayConfig,
    headers: Mapping[str, str],
    body: bytes,
    now_s: int | None = None,
    max_skew_s: int = MAX_SKEW_S,
) -> dict[str, Any]:
    """Verify and decrypt a payment notification (the POST to ``notify_url``).

    Checks, in order: the ``Wechatpay-*`` headers are present, the serial is our
    platform key's, the timestamp is within ``max_skew_s`` of ``now_s``, the
    RSA signature over ``TIMESTAMP\\nNONCE\\nBODY\\n`` verifies, and the
    AEAD_AES_256_GCM resource decrypts with the APIv3 key.

    Returns the decrypted resource (for ``TRANSACTION.SUCCESS``: ``out_trade_no``,
    ``transaction_id``, ``trade_state``, ``amount.total``, ``payer``, ...) with
    the envelope added at the top level: ``id`` (notification id),
    ``event_type``, ``create_time``, ``nonce`` and ``timestamp`` (from the headers).

    Replay protection is the caller's job: remember ``nonce`` (and ``id``) for
    longer than ``2 * max_skew_s`` and reject a repeat; and apply the payment
    idempotently by ``out_trade_no``, because WeChat re-delivers the same
    notification (same ``id``) until it gets a 2xx. The caller should also
    check ``trade_state == "SUCCESS"`` and that ``amount.total`` is the amount
    it asked for.

    Raises :class:`InvalidNotification` on any failure.
    """
    h = {k.lower(): v for k, v in headers.items()}
    ts = h.get("wechatpay-timestamp", "")
    nonce = h.get("wechatpay-nonce", "")
    signature = h.get("wechatpay-signature", "")
    serial = h.get("wechatpay-serial", "")
    if not (ts and nonce and signature and serial):
        raise InvalidNotification("missing Wechatpay-* headers")
    if serial != config.platform_serial:
        raise InvalidNotification("unknown Wechatpay-Serial")
    if not ts.isdigit():
        raise InvalidNotification("bad Wechatpay-Timestamp")
    now = int(time.time()) if now_s is None else now_s
    # Both directions: a far-future timestamp would stay "fresh" for a replay.
    if abs(now - int(ts)) > max_skew_s:
        raise InvalidNotification("stale Wechatpay-Timestamp")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if not verify(config.platform_public_key, signature, ts, nonce, raw):
        raise InvalidNotification("bad signature")

    try:
        envelope = json.loads(raw)
        resource = envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise InvalidNotification("unsupported resource algorithm")
        ad = resource.get("associated_data") or ""
        plaintext = AESGCM(config.apiv3_key.encode()).decrypt(
            resource["nonce"].encode(),
            base64.b64decode(resource["ciphertext"], validate=True),
            ad.encode() if ad else None,
        )
        transaction = json.loads(plaintext)
    except InvalidNotification:
        raise
    except InvalidTag as exc:
        raise InvalidNotification("resource does not decrypt with the APIv3 key") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidNotification("malformed notification body") from exc
    if not isinstance(transaction, dict) or not isinstance(envelope.get("id"), str):
        raise InvalidNotification("malformed notification body")
    # A notification for another merchant/app signed by the same platform is
    # still not ours to apply.
    if transaction.get("mchid", config.mchid) != config.mchid:
        raise InvalidNotification("notification for another mchid")
    if transaction.get("appid", config.appid) not in (config.appid, *config.other_appids):
        raise InvalidNotification("notification for another appid")

    return {
        **transaction,
        "id": envelope["id"],
        "event_type": envelope.get("event_type", ""),
        "create_time": envelope.get("create_time", ""),
        "nonce": nonce,
        "timestamp": int(ts),
    }
