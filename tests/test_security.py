"""Who may do what, secrets, origins and rate limits (docs/security.md)."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import jwt
import pytest
import websockets

from conftest import ROOT, Api, Proc, Socket, free_port
from hall.urls import handlers

# Routes whose every method needs a logged-in user (401 without one).
USER_ONLY = re.compile(r"^/api/(me|me/.*|tasks/.*|orders/.*|admin/.*|lots/\d+/deposit)$")


def concrete(pattern: str) -> str:
    path = pattern.replace(r"([0-9]{1,19})", "1").replace(
        "(open|pause|resume|fair-warning|hammer)", "pause").replace("(ban|unban)", "ban").replace(r"([A-Za-z0-9\-]{1,64})", "abc")
    return path.replace("\\.", ".")  # results\.csv


API_ROUTES = [(concrete(h[0]), h[1]) for h in handlers
              if h[0].startswith("/api/") and h[0] != "/api/.*"]


async def file_status(api, path: str) -> int:
    """The status of a GET for a file (its body is not JSON when it is served)."""
    headers = {"Authorization": f"Bearer {api.token}"} if api.token else {}
    resp = await api.http.fetch(api.base + path, headers=headers, raise_error=False,
                                request_timeout=30)
    return resp.code


@pytest.mark.parametrize("role", ["anonymous", "bidder", "operator"])
async def test_every_route_answers_each_role_without_a_server_error(stack, hall, role):
    api = {"anonymous": hall.anon, "operator": hall.operator}.get(role)
    if api is None:
        api, _ = await hall.bidder(balance=0)
    for path, cls in API_ROUTES:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            if method.lower() not in cls.__dict__ and not any(
                    method.lower() in base.__dict__ for base in cls.__mro__[1:]
                    if base.__module__.startswith("hall.handlers.")
                    and base.__name__ not in ("BaseHandler",)):
                continue
            if path in ("/api/pay/wechat/notify", "/api/auth/logout") or path.endswith("/hammer"):
                continue  # logout would revoke the token the walk goes on with
            if path == "/api/auth/wechat/oauth":
                continue  # a redirect to WeChat's OAuth page by design (tests/test_wechat.py)
            if path.endswith((".csv", ".pdf")):  # files (exports, the sale confirmation)
                code = await file_status(api, path)
                assert code < 500, (role, method, path, code)
                if role == "anonymous" and USER_ONLY.match(path):
                    assert code == 401, (method, path, code)
                if role == "bidder" and path.startswith("/api/admin"):
                    assert code == 403, (method, path, code)
                continue
            code, body = await api.call(method, path, {} if method in ("POST", "PATCH") else None)
            assert code < 500, (role, method, path, code, body)
            assert isinstance(body, dict) and ("code" in body) == (code >= 400), (method, path, body)
            if role == "anonymous" and USER_ONLY.match(path):
                assert code == 401, (method, path, code)
            if role == "bidder" and path.startswith("/api/admin"):
                assert code == 403, (method, path, code)


async def test_tokens_are_signed_and_expire(stack, hall):
    api, user = await hall.bidder(balance=0)
    secret = stack.env["HALL_SECRET"]
    expired = jwt.encode({"sub": str(user["id"]), "role": "operator", "exp": int(time.time()) - 1},
                         secret, algorithm="HS256")
    forged = jwt.encode({"sub": str(user["id"]), "role": "operator", "exp": int(time.time()) + 60},
                        "not-the-secret-but-long-enough-for-hs256", algorithm="HS256")
    for token in (expired, forged, api.token + "x"):
        code, body = await api.call("GET", "/api/me", token=token)
        assert (code, body["code"]) == (401, "unauthorized")
    assert (await api.get("/api/me"))["id"] == user["id"]


async def test_websocket_origin_is_checked(stack, hall):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(stack.ws_url, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    ok = await Socket.connect(stack.ws_url, origin=f"http://127.0.0.1:{stack.port}")
    await ok.send({"op": "ping"})
    assert (await ok.wait_for(lambda m: m.get("type") == "pong"))["server_time_ms"] > 0
    await ok.close()


def test_production_refuses_the_default_secret(stack):
    env = dict(stack.env, HALL_ENV="production")
    env.pop("HALL_SECRET")
    out = subprocess.run([sys.executable, "run.py", "hall", "--port", str(free_port())], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "HALL_SECRET" in out.stderr + out.stdout


def test_production_refuses_to_start_without_a_receipt_key(stack):
    """Receipts signed with a key nobody configured would prove nothing: a
    production hall needs HALL_SIGNING_KEY, and a well-formed one."""
    base = dict(stack.env, HALL_ENV="production", HALL_SECRET="s" * 48)
    for key, says in (("", "HALL_SIGNING_KEY"), ("bm90IDMyIGJ5dGVz", "32 bytes")):
        out = subprocess.run([sys.executable, "run.py", "hall", "--port", str(free_port())],
                             env=dict(base, HALL_SIGNING_KEY=key), cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode != 0
        assert says in out.stderr + out.stdout, out.stderr[-2000:]


async def test_login_is_rate_limited_and_no_secret_is_logged(stack, hall, tmp_path):
    """A second hall process with production-like limits, sharing Redis and the database."""
    port = free_port()
    env = dict(stack.env, HALL_LOGIN_RATE_PER_MIN="5", HALL_LOG_LEVEL="INFO",
               # only the per-address-and-name limit here (the address is shared
               # with every other test's logins; tests/test_hardening.py has the others)
               HALL_LOGIN_ADDR_RATE_PER_MIN="100000", HALL_LOGIN_FAILURES_PER_ACCOUNT="100000")
    second = Proc("hall-limits", [sys.executable, "run.py", "hall", "--port", str(port)], env, tmp_path)
    second.start()
    try:
        second.wait_for_line("hall ready")
        other = Api(f"http://127.0.0.1:{port}")
        codes = []
        for _ in range(8):
            code, body = await other.call("POST", "/api/auth/login",
                                          {"username": "nobody_here", "password": "wrong-password"})
            codes.append(code)
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
        api, user = await hall.bidder(balance=0)
        await other.call("GET", "/api/me", token=api.token)
    finally:
        second.stop()
    logs = (tmp_path / "hall-limits.log").read_text() + stack.hall.log_path.read_text()
    assert stack.env["HALL_SECRET"] not in logs
    assert "secret123" not in logs  # test passwords never reach a log
