"""WeChat login and binding (docs/wechat.md).

* POST /api/auth/wechat {code}: the mini-program's wx.login code, exchanged
  at WeChat (jscode2session) for the user's openid: logs in its user, or the
  user of the same unionid in our other app, or creates one. 200 {token, user}.
* GET /api/me/wechat: which of our apps this account has an openid for (the
  client picks the payment scene from it); POST {code, app?} binds one (409
  `conflict` when that WeChat account is another user's, or this account
  already has another openid in that app).
* GET /api/auth/wechat/oauth?next=: for pages opened inside WeChat's browser,
  the official account's OAuth (snsapi_base, silent). WeChat comes back to
  .../callback with a code; a browser that is logged in gets the openid bound,
  else logged in (or created). The page then trades a one-time ticket (60 s,
  in Redis) for its token at POST /api/auth/wechat/ticket, so no token is
  ever in a URL.

Openids come from WeChat only; the session_key is dropped inside
auction/wechatlogin.py and never stored, returned or logged.
"""
from __future__ import annotations

import secrets
from urllib.parse import urlencode

from peewee import IntegrityError

import settings
from auction import keys
from auction.errors import Refused
from auction.wechatlogin import (MINIPROGRAM, OFFICIAL_ACCOUNT, WeChatLoginError, WeChatUser,
                                 apps, authorize_url, code2session, looks_like_code,
                                 oauth_exchange)
from hall.errors import ApiError
from hall.handlers.auth import COOKIE, RegisterHandler
from hall.handlers.base import BaseHandler
from hall.validate import text
from models import User, WeChatIdentity, write_transaction

STATE_COOKIE = "hall_wx_state"
TICKET_TTL_S = 60


def login_or_create(wx: WeChatUser) -> User:
    """The user of this openid; else of the same unionid in our other app
    (this openid is added to them); else a new bidder (in one transaction)."""
    with write_transaction():
        ident = WeChatIdentity.get_or_none((WeChatIdentity.appid == wx.appid)
                                           & (WeChatIdentity.openid == wx.openid))
        if ident is not None:
            return User.get_by_id(ident.user_id)
        sibling = (WeChatIdentity.get_or_none(WeChatIdentity.unionid == wx.unionid)
                   if wx.unionid else None)
        if sibling is not None and not WeChatIdentity.select().where(
                (WeChatIdentity.user == sibling.user_id)
                & (WeChatIdentity.appid == wx.appid)).exists():
            user = User.get_by_id(sibling.user_id)
        else:
            # No password: "!" is no argon2 hash, so a password login never matches.
            user = User.create(username=f"wx_{secrets.token_hex(6)}", password_hash="!wechat")
        WeChatIdentity.create(user=user.id, appid=wx.appid, openid=wx.openid, unionid=wx.unionid)
        return user


def bind(user_id: int, wx: WeChatUser) -> None:
    """Bind this openid to the user; binding it again is fine."""
    with write_transaction():
        ident = WeChatIdentity.get_or_none((WeChatIdentity.appid == wx.appid)
                                           & (WeChatIdentity.openid == wx.openid))
        if ident is not None:
            if ident.user_id != user_id:
                raise Refused("conflict", "this WeChat account belongs to another user")
            return
        if WeChatIdentity.select().where((WeChatIdentity.user == user_id)
                                         & (WeChatIdentity.appid == wx.appid)).exists():
            raise Refused("conflict", "this account is bound to another WeChat account")
        WeChatIdentity.create(user=user_id, appid=wx.appid, openid=wx.openid, unionid=wx.unionid)


def bound_apps(user_id: int) -> dict[str, bool]:
    have = {i.appid for i in WeChatIdentity.select(WeChatIdentity.appid)
            .where(WeChatIdentity.user == user_id)}
    return {kind: app.appid in have for kind, app in apps(settings).items()}


class WeChatBase(RegisterHandler):
    """WeChat's answers through the executor (blocking requests), errors in
    the contract's words."""

    async def exchange(self, kind: str, code: str) -> WeChatUser:
        app = apps(settings)[kind]
        fn = code2session if kind == MINIPROGRAM else oauth_exchange
        try:
            return await self.application.run_blocking(fn, settings.wechat_login_base(), app, code)
        except WeChatLoginError as exc:
            raise ApiError("invalid" if exc.code == "invalid_code" else "unavailable",
                           exc.message)

    async def in_db(self, fn: object, *args: object) -> object:
        try:
            return await self.db.run(lambda: fn(*args))  # type: ignore[operator]
        except Refused as exc:
            raise ApiError(exc.code, exc.message)
        except IntegrityError:  # the same openid bound twice at one moment
            raise ApiError("conflict", "this WeChat account was bound meanwhile; look again")

    def read_code(self) -> str:
        code = text(self.json_body(), "code", max_len=128)
        if not looks_like_code(code):
            raise ApiError("invalid", "code: not a WeChat login code")
        return code


class WeChatLoginHandler(WeChatBase):
    async def post(self) -> None:
        code = self.read_code()
        await self.application.limiter.hit(f"wechat-login:{self.client_ip}",
                                           settings.LOGIN_RATE_PER_MIN, 60)
        wx = await self.exchange(MINIPROGRAM, code)
        self.send_session(await self.in_db(login_or_create, wx))  # type: ignore[arg-type]


class MyWeChatHandler(WeChatBase):
    async def get(self) -> None:
        user = self.require_user()
        self.send({"bound": await self.db.run(lambda: bound_apps(user.id))})

    async def post(self) -> None:
        user = self.require_user()
        data = self.json_body()
        kind = data.get("app", MINIPROGRAM)
        if kind not in (MINIPROGRAM, OFFICIAL_ACCOUNT):
            raise ApiError("invalid", "app must be miniprogram or official_account")
        code = self.read_code()
        wx = await self.exchange(kind, code)
        await self.in_db(bind, user.id, wx)
        self.send({"bound": await self.db.run(lambda: bound_apps(user.id))})


def _safe_next(raw: str) -> str:
    """A path on this site only (an open redirect would hand WeChat users to anyone)."""
    if not raw.startswith("/") or raw.startswith("//") or "\\" in raw or len(raw) > 500:
        return "/"
    return raw


class WeChatOAuthHandler(WeChatBase):
    """GET: off to WeChat's OAuth page; the state cookie ties the answer to this browser."""

    async def get(self) -> None:
        app = apps(settings)[OFFICIAL_ACCOUNT]
        if not app.secret or not settings.wechat_oauth_base():
            raise ApiError("unavailable", "WeChat official-account login is not configured")
        state = secrets.token_urlsafe(16)
        nxt = _safe_next(self.get_query_argument("next", "/"))
        self.set_cookie(STATE_COOKIE, f"{state}|{nxt}", httponly=True, samesite="Lax",
                        secure=settings.HALL_ENV == "production", expires_days=1 / 144)
        back = f"{self.request.protocol}://{self.request.host}/api/auth/wechat/oauth/callback"
        self.redirect(authorize_url(settings.wechat_oauth_base(), app, back, state))


class WeChatOAuthCallbackHandler(WeChatBase):
    async def get(self) -> None:
        state, _, nxt = (self.get_cookie(STATE_COOKIE) or "").partition("|")
        if not state or not secrets.compare_digest(state, self.get_query_argument("state", "")):
            raise ApiError("invalid", "this WeChat login was not started here; start again")
        self.clear_cookie(STATE_COOKIE)
        code = self.get_query_argument("code", "")
        if not looks_like_code(code):
            raise ApiError("invalid", "code: not a WeChat login code")
        wx = await self.exchange(OFFICIAL_ACCOUNT, code)
        nxt = _safe_next(nxt)
        cookie = self.get_cookie(COOKIE)
        me = await self.application.identities.resolve(cookie) if cookie else None
        if me is not None:
            try:
                await self.in_db(bind, me.id, wx)
            except ApiError as exc:
                sep = "&" if "?" in nxt else "?"
                return self.redirect(f"{nxt}{sep}wechat={exc.code}")
            return self.redirect(nxt)
        user = await self.in_db(login_or_create, wx)
        ticket = secrets.token_urlsafe(24)
        await self.redis.set(keys.wechat_oauth_ticket(ticket), str(user.id),  # type: ignore[attr-defined]
                             ex=TICKET_TTL_S)
        self.redirect("/login?" + urlencode({"wechat_ticket": ticket, "next": nxt}))


class WeChatTicketHandler(WeChatBase):
    """POST {ticket}: the OAuth's one-time ticket for {token, user}."""

    async def post(self) -> None:
        ticket = text(self.json_body(), "ticket", max_len=64)
        raw = await self.redis.getdel(keys.wechat_oauth_ticket(ticket))
        user = await User.aget_or_none(User.id == int(raw)) if raw else None
        if user is None:
            raise ApiError("unauthorized", "this WeChat login ticket is used or expired")
        self.send_session(user)


SCENES = ("jsapi", "native", "h5")


async def wechat_scene(handler: BaseHandler, data: dict, method: str, user_id: int) -> dict:
    """The payment task's WeChat arguments from the request's optional `scene`
    (default jsapi, as before scenes existed) and `wechat_app`. A jsapi payment
    with no openid bound is `conflict` at once (the worker checks again); h5
    takes the payer's address, which the gateway wants."""
    if method != "wechat":
        return {}
    scene = data.get("scene", "jsapi")
    if scene not in SCENES:
        raise ApiError("invalid", "scene must be one of jsapi, native, h5")
    app = data.get("wechat_app")
    if app is not None and app not in (MINIPROGRAM, OFFICIAL_ACCOUNT):
        raise ApiError("invalid", "wechat_app must be miniprogram or official_account")
    args: dict = {"scene": scene}
    if scene == "jsapi":
        bound = await handler.db.run(lambda: bound_apps(user_id))
        if not (bound.get(app) if app else any(bound.values())):
            raise ApiError("conflict", "a WeChat JSAPI payment needs your WeChat account: log "
                                       "in with WeChat or bind it (POST /api/me/wechat) first")
        if app:
            args["app"] = app
    if scene == "h5":
        args["client_ip"] = handler.client_ip
    return args
