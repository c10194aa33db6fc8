"""WeChat login: who a WeChat user is, as WeChat says.

Two ways in, both ending in an ``openid`` for one app id (the same person has
a different openid in each app):

* the mini-program: ``wx.login`` gives the client a one-time ``code``; the
  server exchanges it (``GET /sns/jscode2session``) for ``openid``,
  ``session_key`` and, when the app is tied to an open platform account,
  ``unionid``;
* the official account, for pages opened inside WeChat's browser: the page is
  sent to WeChat's OAuth page (``scope=snsapi_base``: silent, openid only),
  which comes back to us with a ``code`` exchanged at
  ``GET /sns/oauth2/access_token``.

The ``session_key`` (and the OAuth ``access_token``) are dropped here: they
are never returned, stored or logged, and no error message carries an answer
body. Blocking ``requests`` (the hall calls these through its executor). In
dev and tests the answers come from ``devsim/wechatpay.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import requests

from auction.errors import GatewayError

MINIPROGRAM, OFFICIAL_ACCOUNT = "miniprogram", "official_account"
# wx.login codes are short base64-ish strings; anything else is not worth a call.
_CODE = re.compile(r"^[0-9A-Za-z_\-]{8,128}$")
# errcodes that mean "this code is no good" (bad, used or expired; a user
# WeChat blocks): the caller's input, not our fault.
_BAD_CODE = {40029, 40163, 40226, 41008}


class WeChatLoginError(GatewayError):
    """WeChat refused the code (``invalid_code``) or could not be asked
    (``unavailable``: network, system busy, a wrong app secret)."""


@dataclass(frozen=True)
class WeChatApp:
    """One of our WeChat apps: the mini-program or the official account."""

    kind: str
    appid: str
    secret: str


@dataclass(frozen=True)
class WeChatUser:
    """A WeChat user as one app sees them."""

    appid: str
    openid: str
    unionid: str | None


def apps(s: Any) -> dict[str, WeChatApp]:
    """Our apps from the settings module, by kind."""
    return {MINIPROGRAM: WeChatApp(MINIPROGRAM, s.WECHAT_MINI_APPID, s.WECHAT_MINI_SECRET),
            OFFICIAL_ACCOUNT: WeChatApp(OFFICIAL_ACCOUNT, s.WECHAT_OA_APPID, s.WECHAT_OA_SECRET)}


def looks_like_code(code: Any) -> bool:
    return isinstance(code, str) and bool(_CODE.match(code))


def code2session(base: str, app: WeChatApp, code: str,
                 session: requests.Session | None = None, timeout_s: float = 10) -> WeChatUser:
    """Exchange a ``wx.login`` code for the user's openid (jscode2session)."""
    return _exchange(base, "/sns/jscode2session", app, code,
                     {"appid": app.appid, "secret": app.secret, "js_code": code,
                      "grant_type": "authorization_code"}, session, timeout_s)


def oauth_exchange(base: str, app: WeChatApp, code: str,
                   session: requests.Session | None = None, timeout_s: float = 10) -> WeChatUser:
    """Exchange an official-account OAuth code for the user's openid."""
    return _exchange(base, "/sns/oauth2/access_token", app, code,
                     {"appid": app.appid, "secret": app.secret, "code": code,
                      "grant_type": "authorization_code"}, session, timeout_s)


def authorize_url(oauth_base: str, app: WeChatApp, redirect_uri: str, state: str) -> str:
    """WeChat's OAuth page for ``snsapi_base`` (silent: no consent screen)."""
    query = urlencode({"appid": app.appid, "redirect_uri": redirect_uri,
                       "response_type": "code", "scope": "snsapi_base", "state": state},
                      quote_via=quote)
    # The fragment is required by WeChat's browser; it never reaches a server.
    return f"{oauth_base.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"


def _exchange(base: str, path: str, app: WeChatApp, code: str, params: dict[str, str],
              session: requests.Session | None, timeout_s: float) -> WeChatUser:
    if not base or not app.appid or not app.secret:
        raise WeChatLoginError("unavailable", f"WeChat {app.kind} login is not configured")
    if not looks_like_code(code):
        raise WeChatLoginError("invalid_code", "code: not a WeChat login code")
    try:
        resp = (session or requests).get(base.rstrip("/") + path, params=params,
                                         timeout=timeout_s)
        data = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise WeChatLoginError("unavailable", f"WeChat did not answer ({type(exc).__name__})")
    if not isinstance(data, dict):
        raise WeChatLoginError("unavailable", "WeChat's answer is not an object")
    errcode = data.get("errcode") or 0
    if errcode:
        if errcode in _BAD_CODE:
            raise WeChatLoginError("invalid_code", "the WeChat code is invalid or used")
        # A wrong secret, a busy system: not the user's fault. The errmsg only.
        raise WeChatLoginError("unavailable", f"WeChat refused ({errcode}: "
                                              f"{str(data.get('errmsg', ''))[:80]})")
    openid, unionid = data.get("openid"), data.get("unionid")
    if not isinstance(openid, str) or not openid:
        raise WeChatLoginError("unavailable", "WeChat's answer has no openid")
    return WeChatUser(app.appid, openid, unionid if isinstance(unionid, str) and unionid else None)
