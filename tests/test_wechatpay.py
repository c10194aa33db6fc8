"""WeChat Pay v3 client against the local gateway simulator, over real HTTP."""
from __future__ import annotations

import base64
import dataclasses
import json
import socket
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

# Runnable with a bare `pytest` too, which does not put the repo root on sys.path.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devsim.wechatpay import DEV_APP_SECRET, start_simulator  # noqa: E402
from auction.wechatlogin import (  # noqa: E402
    MINIPROGRAM, WeChatApp, WeChatLoginError, code2session, oauth_exchange)
from auction.wechatpay import (  # noqa: E402
    DEV_APPID,
    InvalidNotification,
    WeChatPayClient,
    WeChatPayConfig,
    WeChatPayError,
    WeChatPayUnavailable,
    dev_config,
    dev_keys,
    generate_keypair,
    key_serial,
    parse_notification,
    sign,
    load_private_key,
)


class NotifyCapture:
    """A tiny notify_url endpoint that records what the gateway POSTs."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                # Recorded before answering, so it is there when /sim/pay returns.
                capture.deliveries.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/pay/wechat/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wechat-keys")


@pytest.fixture(scope="module")
def sim(keys_dir: Path):
    handle = start_simulator(0, keys_dir)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def notify():
    capture = NotifyCapture()
    yield capture
    capture.stop()


@pytest.fixture(scope="module")
def config(keys_dir: Path, sim, notify) -> WeChatPayConfig:
    return dev_config(keys_dir, api_base=sim.url, notify_url=notify.url)


@pytest.fixture(scope="module")
def client(config: WeChatPayConfig) -> WeChatPayClient:
    return WeChatPayClient(config)


@pytest.fixture(scope="module")
def openid(sim) -> str:
    """A WeChat user's openid for the dev app, as WeChat hands it out: a
    wx.login code from the simulator, exchanged through jscode2session."""
    code = requests.post(f"{sim.url}/sim/wx/login", json={"user": "buyer"}, timeout=10).json()["code"]
    return code2session(sim.url, WeChatApp(MINIPROGRAM, DEV_APPID, DEV_APP_SECRET), code).openid


def trade_no() -> str:
    return "T" + uuid.uuid4().hex[:20]


def pay(sim, out_trade_no: str, deliver: bool = True) -> dict:
    r = requests.post(f"{sim.url}/sim/pay", json={"out_trade_no": out_trade_no, "deliver": deliver}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def paid_notification(sim, client, notify, openid) -> tuple[dict[str, str], bytes, str]:
    """Create and pay an order; return the captured (headers, body) and its out_trade_no."""
    no = trade_no()
    client.jsapi_prepay(no, "Lot 7 deposit", 150000, openid)
    result = pay(sim, no)
    assert result["status"] == 204
    headers, body = notify.deliveries[-1]
    return headers, body, no


# ---------------------------------------------------------------- prepay


def test_prepay_returns_client_params_signed_by_merchant(sim, client, config, keys_dir, openid):
    no = trade_no()
    params = client.jsapi_prepay(no, "Lot 7 deposit 保证金", 150000, openid)

    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign", "prepay_id"}
    assert params["appId"] == config.appid
    assert params["signType"] == "RSA"
    assert params["package"] == f"prepay_id={params['prepay_id']}"
    assert params["timeStamp"].isdigit()

    # Verify paySign independently with the merchant *public* key.
    pub = serialization.load_pem_public_key(dev_keys(keys_dir).merchant_public_pem)
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    pub.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())

    # The gateway stored the real v3 order.
    orders = {o["out_trade_no"]: o for o in requests.get(f"{sim.url}/sim/orders", timeout=10).json()["orders"]}
    order = orders[no]
    assert order["total"] == 150000 and order["openid"] == openid
    assert order["notify_url"] == config.notify_url and order["mchid"] == config.mchid
    assert order["prepay_id"] == params["prepay_id"]

    # Same order again is idempotent on the gateway: same prepay_id.
    assert client.jsapi_prepay(no, "Lot 7 deposit 保证金", 150000, openid)["prepay_id"] == params["prepay_id"]


def test_request_signed_with_wrong_key_gets_sign_error(config, openid):
    wrong_private, _ = generate_keypair()
    bad = WeChatPayClient(dataclasses.replace(config, private_key=wrong_private))
    with pytest.raises(WeChatPayError) as err:
        bad.jsapi_prepay(trade_no(), "x", 100, openid)
    assert err.value.code == "SIGN_ERROR" and err.value.status == 401
    assert not isinstance(err.value, WeChatPayUnavailable)


def test_response_signed_with_unknown_platform_key_is_rejected(config, openid):
    _, other_public = generate_keypair()
    fooled = WeChatPayClient(dataclasses.replace(config, platform_public_key=other_public))
    with pytest.raises(WeChatPayError) as err:
        fooled.jsapi_prepay(trade_no(), "x", 100, openid)
    assert err.value.code == "INVALID_RESPONSE_SIGNATURE"


def test_query_order_before_and_after_payment(sim, client, openid):
    no = trade_no()
    client.jsapi_prepay(no, "Lot 9", 5000, openid)
    assert client.query_order(no)["trade_state"] == "NOTPAY"
    pay(sim, no, deliver=False)
    order = client.query_order(no)
    assert order["trade_state"] == "SUCCESS"
    assert order["amount"]["total"] == 5000 and order["transaction_id"]

    with pytest.raises(WeChatPayError) as err:
        client.query_order(trade_no())
    assert (err.value.code, err.value.status) == ("ORDER_NOT_EXIST", 404)


def test_close_order_stops_payment_and_a_paid_order_cannot_be_closed(sim, client, openid):
    no = trade_no()
    client.jsapi_prepay(no, "Lot 9", 5000, openid)
    client.close_order(no)  # 204, signed by the platform like every answer
    client.close_order(no)  # closing twice is fine
    assert client.query_order(no)["trade_state"] == "CLOSED"

    paid = trade_no()
    client.jsapi_prepay(paid, "Lot 9", 5000, openid)
    pay(sim, paid, deliver=False)
    with pytest.raises(WeChatPayError) as err:
        client.close_order(paid)
    assert (err.value.code, err.value.status) == ("ORDERPAID", 400)
    assert client.query_order(paid)["trade_state"] == "SUCCESS"


def test_a_closed_order_is_never_prepaid_again_but_a_payment_under_way_may_land(sim, client, openid):
    no = trade_no()
    client.jsapi_prepay(no, "Lot 9", 5000, openid)
    expired = requests.post(f"{sim.url}/sim/expire", json={"out_trade_no": no}, timeout=10)
    assert expired.status_code == 200 and expired.json()["order"]["trade_state"] == "CLOSED"
    assert client.query_order(no)["trade_state"] == "CLOSED"
    # As the real gateway: a closed order is paid with a new number, never again.
    with pytest.raises(WeChatPayError) as err:
        client.jsapi_prepay(no, "Lot 9", 5000, openid)
    assert (err.value.code, err.value.status) == ("ORDER_CLOSED", 400)
    r = requests.post(f"{sim.url}/sim/pay", json={"out_trade_no": no, "deliver": False}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "ORDER_CLOSED"
    # The payer had confirmed before the close: that payment still goes through.
    r = requests.post(f"{sim.url}/sim/pay", json={"out_trade_no": no, "deliver": False,
                                                  "after_close": True}, timeout=10)
    assert r.status_code == 200 and r.json()["order"]["trade_state"] == "SUCCESS"
    with pytest.raises(WeChatPayError) as err:
        client.jsapi_prepay(no, "Lot 9", 5000, openid)
    assert err.value.code == "ORDERPAID"
    assert client.refund(no, "RP" + no, 5000, 5000)["amount"]["refund"] == 5000


def test_injected_faults_can_be_cleared(sim, client, openid):
    requests.post(f"{sim.url}/sim/fail", json={"status": 500, "count": 50}, timeout=10)
    with pytest.raises(WeChatPayUnavailable):
        client.query_order(trade_no())
    cleared = requests.post(f"{sim.url}/sim/fail", json={"clear": True}, timeout=10)
    assert cleared.json() == {"pending_faults": 0}
    no = trade_no()
    assert client.jsapi_prepay(no, "x", 100, openid)["prepay_id"]


def test_gateway_5xx_and_network_errors_are_retryable(sim, client, config, openid):
    requests.post(f"{sim.url}/sim/fail", json={"status": 500}, timeout=10).raise_for_status()
    no = trade_no()
    with pytest.raises(WeChatPayUnavailable) as err:
        client.jsapi_prepay(no, "x", 100, openid)
    assert err.value.status == 500 and err.value.code == "SYSTEM_ERROR"
    # The retry with the same ids goes through.
    assert client.jsapi_prepay(no, "x", 100, openid)["prepay_id"]

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(WeChatPayUnavailable) as err:
        WeChatPayClient(dataclasses.replace(config, api_base=dead, timeout_s=2)).query_order(no)
    assert err.value.code == "NETWORK_ERROR"


# ---------------------------------------------------------------- notifications


def test_notification_from_gateway_parses(sim, client, config, notify, openid):
    headers, body, no = paid_notification(sim, client, notify, openid)
    envelope = json.loads(body)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["resource_type"] == "encrypt-resource"
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"

    tx = parse_notification(config, headers, body)
    assert tx["out_trade_no"] == no
    assert tx["trade_state"] == "SUCCESS"
    assert tx["amount"]["total"] == 150000
    assert tx["transaction_id"].startswith("4200")
    assert tx["payer"]["openid"] == openid
    # Envelope fields the caller needs for replay protection.
    assert tx["id"] == envelope["id"]
    assert tx["nonce"] == headers["Wechatpay-Nonce"]
    assert tx["event_type"] == "TRANSACTION.SUCCESS"

    # Header names are case-insensitive, as on the wire.
    assert parse_notification(config, {k.lower(): v for k, v in headers.items()}, body)["out_trade_no"] == no

    # Paying again re-delivers the same notification id (caller must be idempotent).
    again = pay(sim, no)
    assert again["notification_id"] == envelope["id"]
    assert parse_notification(config, *notify.deliveries[-1])["id"] == envelope["id"]


def test_tampered_body_is_rejected(sim, client, config, notify, openid):
    headers, body, _ = paid_notification(sim, client, notify, openid)
    envelope = json.loads(body)
    envelope["summary"] = "paid twice"
    with pytest.raises(InvalidNotification, match="signature"):
        parse_notification(config, headers, json.dumps(envelope, ensure_ascii=False).encode())
    with pytest.raises(InvalidNotification):
        parse_notification(config, headers, body + b" ")


def test_wrong_signature_is_rejected(sim, client, config, notify, openid):
    headers, body, _ = paid_notification(sim, client, notify, openid)
    # A forger with some other RSA key signs the exact message.
    forger = load_private_key(generate_keypair()[0])
    forged = sign(forger, headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body)
    for bad in (forged, "bm90IGEgc2lnbmF0dXJl", "%%%not-base64%%%"):
        with pytest.raises(InvalidNotification, match="signature"):
            parse_notification(config, {**headers, "Wechatpay-Signature": bad}, body)
    no_sig = {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}
    with pytest.raises(InvalidNotification):
        parse_notification(config, no_sig, body)


def test_wrong_serial_is_rejected(sim, client, config, notify, openid):
    headers, body, _ = paid_notification(sim, client, notify, openid)
    _, other_public = generate_keypair()
    with pytest.raises(InvalidNotification, match="Serial"):
        parse_notification(config, {**headers, "Wechatpay-Serial": key_serial(other_public)}, body)


def test_stale_or_future_timestamp_is_rejected(sim, client, config, notify, openid):
    headers, body, _ = paid_notification(sim, client, notify, openid)
    ts = int(headers["Wechatpay-Timestamp"])
    assert parse_notification(config, headers, body, now_s=ts + 300)["id"]  # edge still fine
    with pytest.raises(InvalidNotification, match="Timestamp"):
        parse_notification(config, headers, body, now_s=ts + 301)
    with pytest.raises(InvalidNotification, match="Timestamp"):
        parse_notification(config, headers, body, now_s=ts - 301)
    with pytest.raises(InvalidNotification, match="Timestamp"):
        parse_notification(config, headers, body, now_s=ts + 61, max_skew_s=60)


def test_wrong_apiv3_key_is_rejected(sim, client, config, notify, openid):
    headers, body, _ = paid_notification(sim, client, notify, openid)
    other = dataclasses.replace(config, apiv3_key="0123456789abcdef0123456789abcdef")
    with pytest.raises(InvalidNotification, match="APIv3"):
        parse_notification(other, headers, body)


def test_notification_for_another_merchant_is_rejected(sim, client, config, notify, openid):
    headers, body, _ = paid_notification(sim, client, notify, openid)
    with pytest.raises(InvalidNotification, match="mchid"):
        parse_notification(dataclasses.replace(config, mchid="1900000999"), headers, body)


# ---------------------------------------------------------------- refunds


def test_refund_is_idempotent_by_out_refund_no(sim, client, openid):
    no = trade_no()
    client.jsapi_prepay(no, "Lot 3 deposit", 10000, openid)
    pay(sim, no, deliver=False)

    refund_no = "R" + no
    first = client.refund(no, refund_no, 3000, 10000, "lost the lot")
    second = client.refund(no, refund_no, 3000, 10000, "lost the lot")
    assert first["refund_id"] == second["refund_id"]
    assert first["status"] in ("SUCCESS", "PROCESSING")
    assert first["amount"]["refund"] == 3000

    refunds = [r for r in requests.get(f"{sim.url}/sim/refunds", timeout=10).json()["refunds"]
               if r["out_trade_no"] == no]
    assert len(refunds) == 1
    assert client.query_order(no)["trade_state"] == "REFUND"

    # Only 7000 is left to refund.
    with pytest.raises(WeChatPayError) as err:
        client.refund(no, "R2" + no[:20], 8000, 10000)
    assert err.value.status == 400
    assert client.refund(no, "R3" + no[:20], 7000, 10000)["amount"]["refund"] == 7000


def test_refund_above_paid_amount_is_refused(sim, client, openid):
    no = trade_no()
    client.jsapi_prepay(no, "Lot 4 deposit", 10000, openid)
    pay(sim, no, deliver=False)
    with pytest.raises(WeChatPayError) as err:
        client.refund(no, "R" + no, 10001, 10000)
    assert (err.value.code, err.value.status) == ("INVALID_REQUEST", 400)
    assert not isinstance(err.value, WeChatPayUnavailable)
    refunds = requests.get(f"{sim.url}/sim/refunds", timeout=10).json()["refunds"]
    assert not [r for r in refunds if r["out_trade_no"] == no]


def test_refund_of_unpaid_order_is_refused(client, openid):
    no = trade_no()
    client.jsapi_prepay(no, "Lot 5 deposit", 10000, openid)
    with pytest.raises(WeChatPayError) as err:
        client.refund(no, "R" + no, 100, 10000)
    assert err.value.status == 400


# ---------------------------------------------------------------- helpers


def test_dev_keys_are_created_once(tmp_path):
    first = dev_config(tmp_path)
    second = dev_config(tmp_path)
    assert first.serial_no == second.serial_no
    assert first.platform_serial == second.platform_serial
    assert first.apiv3_key == second.apiv3_key and len(first.apiv3_key.encode()) == 32
    assert (tmp_path / "merchant_private.pem").stat().st_mode & 0o077 == 0


def test_errors_survive_celery_style_rebuild():
    err = WeChatPayUnavailable("SYSTEM_ERROR", "busy", 503)
    rebuilt = type(err)(*err.args)
    assert (rebuilt.code, rebuilt.message, rebuilt.status) == ("SYSTEM_ERROR", "busy", 503)


# ---------------------------------------------------------------- scenes and login


def test_jsapi_refuses_an_openid_wechat_never_issued(client):
    with pytest.raises(WeChatPayError) as exc:
        client.jsapi_prepay(trade_no(), "Lot 1", 100, "openid-made-up")
    assert exc.value.code == "PARAM_ERROR" and exc.value.status == 400


def test_native_prepay_gives_a_code_url_the_payer_scans(sim, client, config, notify):
    no = trade_no()
    code_url = client.native_prepay(no, "Lot 2 保证金", 2500)
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert client.native_prepay(no, "Lot 2 保证金", 2500) == code_url  # the same order again
    r = requests.post(f"{sim.url}/sim/pay", json={"code_url": code_url}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == 204
    headers, body = notify.deliveries[-1]
    tx = parse_notification(config, headers, body)
    assert tx["out_trade_no"] == no and tx["trade_type"] == "NATIVE"
    assert tx["trade_state"] == "SUCCESS" and tx["amount"]["total"] == 2500


def test_h5_prepay_sends_the_phone_to_a_cashier_that_pays_and_comes_back(sim, client, config,
                                                                         notify):
    no = trade_no()
    h5_url = client.h5_prepay(no, "Lot 3 保证金", 3000, "203.0.113.9")
    page = requests.get(h5_url + "&redirect_url=https%3A%2F%2Fshop.example%2Fback", timeout=10)
    assert page.status_code == 200 and "¥30.00" in page.text
    paid = requests.post(h5_url.split("?")[0], data={"redirect_url": "https://shop.example/back"},
                         allow_redirects=False, timeout=10)
    assert paid.status_code == 302 and paid.headers["Location"] == "https://shop.example/back"
    tx = parse_notification(config, *notify.deliveries[-1])
    assert tx["out_trade_no"] == no and tx["trade_type"] == "H5"
    with pytest.raises(ValueError):
        client.h5_prepay(trade_no(), "x", 100, "")


def test_a_trade_number_belongs_to_one_scene(client, openid):
    no = trade_no()
    client.native_prepay(no, "Lot 4", 100)
    with pytest.raises(WeChatPayError) as exc:
        client.jsapi_prepay(no, "Lot 4", 100, openid)
    assert exc.value.code == "INVALID_REQUEST"


def test_jscode2session_codes_are_single_use_and_keep_session_key_out(sim):
    app = WeChatApp(MINIPROGRAM, DEV_APPID, DEV_APP_SECRET)
    code = requests.post(f"{sim.url}/sim/wx/login", json={"user": "p1"}, timeout=10).json()["code"]
    first = code2session(sim.url, app, code)
    assert first.openid and first.unionid
    assert "session_key" not in repr(first)  # dropped, never carried further
    with pytest.raises(WeChatLoginError) as exc:
        code2session(sim.url, app, code)  # used
    assert exc.value.code == "invalid_code"
    again = requests.post(f"{sim.url}/sim/wx/login", json={"user": "p1"}, timeout=10).json()["code"]
    assert code2session(sim.url, app, again).openid == first.openid  # one person, one openid
    wrong = WeChatApp(MINIPROGRAM, DEV_APPID, "not-the-secret")
    fresh = requests.post(f"{sim.url}/sim/wx/login", json={}, timeout=10).json()["code"]
    with pytest.raises(WeChatLoginError) as exc:
        code2session(sim.url, wrong, fresh)
    assert exc.value.code == "unavailable"  # our misconfiguration, not the user's code


def test_oauth_snsapi_base_redirects_back_with_a_code_for_the_browsers_person(sim):
    app = WeChatApp("official_account", DEV_APPID, DEV_APP_SECRET)
    r = requests.get(f"{sim.url}/connect/oauth2/authorize", params={
        "appid": DEV_APPID, "redirect_uri": "https://hall.example/cb", "response_type": "code",
        "scope": "snsapi_base", "state": "s1", "sim_user": "p2"}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith("https://hall.example/cb?code=")
    code = r.headers["Location"].split("code=")[1].split("&")[0]
    assert r.headers["Location"].endswith("&state=s1")
    assert oauth_exchange(sim.url, app, code).openid
