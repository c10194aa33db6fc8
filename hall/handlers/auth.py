"""POST /api/auth/register, /login, /logout; GET /api/me.

Limits (settings, counted in Redis across hall processes, by the client
address of hall/clientaddr.py):

* registration: HALL_LOGIN_RATE_PER_MIN per address;
* login: HALL_LOGIN_RATE_PER_MIN per address and username, and
  HALL_LOGIN_ADDR_RATE_PER_MIN per address whatever the username (one
  password sprayed over many accounts);
* failed logins of one account from anywhere: HALL_LOGIN_FAILURES_PER_ACCOUNT
  per HALL_LOGIN_FAILURE_WINDOW_S; past it that account's logins answer
  `rate_limited` until the window ends (rotating addresses does not help).
"""
from __future__ import annotations

import re

from peewee import IntegrityError, fn

import settings

from hall.auth import Identity, hash_password, issue_token, verify_password
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.validate import text
from models import User

COOKIE = "hall_token"

USERNAME = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{2,32}$")


def session_answer(user: User) -> dict:
    return {"token": issue_token(user.id, user.username, user.role), "user": user.public()}


class RegisterHandler(BaseHandler):
    async def post(self) -> None:
        data = self.json_body()
        username = text(data, "username", max_len=32)
        password = text(data, "password", max_len=128, min_len=6)
        phone = text(data, "phone", required=False, max_len=20)
        if not USERNAME.match(username):
            raise ApiError("invalid", "username: 2-32 letters, digits, _ . - or Chinese characters")
        await self.application.limiter.hit(f"register:{self.client_ip}",
                                           settings.LOGIN_RATE_PER_MIN, 60)
        # Names that differ only by case ("OP1" beside "op1") would pass for
        # each other in masks and on screens: one of them only.
        if await User.aget_or_none(fn.LOWER(User.username) == username.lower()) is not None:
            raise ApiError("conflict", "that username is taken")
        # Hashing is deliberately slow (argon2): keep it off the IOLoop.
        pw_hash = await self.application.run_blocking(hash_password, password)
        try:
            user = await User.acreate(username=username, password_hash=pw_hash, phone=phone)
        except IntegrityError:
            raise ApiError("conflict", "that username is taken")
        self.send_session(user, 201)

    def send_session(self, user: User, status: int = 200) -> None:
        """The token in the body (scripts, the pages' HTTP calls) and in the
        HttpOnly cookie (the pages' sockets, so no token is ever in a URL)."""
        answer = session_answer(user)
        self.set_cookie(COOKIE, answer["token"], httponly=True, samesite="Lax",
                        secure=settings.HALL_ENV == "production",
                        expires_days=settings.TOKEN_TTL_S / 86400)
        self.send(answer, status)


class LoginHandler(RegisterHandler):
    async def post(self) -> None:
        data = self.json_body()
        username = text(data, "username", max_len=32)
        password = text(data, "password", max_len=128)
        limiter = self.application.limiter
        address = self.client_ip
        account = f"login-fail:{username.lower()}"
        await limiter.hit(f"login-addr:{address}", settings.LOGIN_ADDR_RATE_PER_MIN, 60)
        await limiter.hit(f"login:{address}:{username}", settings.LOGIN_RATE_PER_MIN, 60)
        await limiter.over(account, settings.LOGIN_FAILURES_PER_ACCOUNT,
                           settings.LOGIN_FAILURE_WINDOW_S)
        user = await User.aget_or_none(User.username == username)
        ok = await self.application.run_blocking(
            verify_password, user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not ok:
            await limiter.add(account, settings.LOGIN_FAILURE_WINDOW_S)
            raise ApiError("unauthorized", "wrong username or password")
        self.send_session(user)


class LogoutHandler(BaseHandler):
    """POST /api/auth/logout: the token (Bearer, and the login cookie's) is
    revoked on every hall process at once, and the cookie cleared."""

    async def post(self) -> None:
        identities = self.application.identities
        found: dict[str, Identity] = {}
        if self.current_user is not None:
            found[self.current_user.token_id] = self.current_user
        cookie = self.get_cookie(COOKIE)
        if cookie and cookie != self.bearer_token():
            ident = await identities.resolve(cookie)
            if ident is not None:
                found[ident.token_id] = ident
        self.clear_cookie(COOKIE, secure=settings.HALL_ENV == "production",
                          httponly=True, samesite="Lax")
        if not found:
            raise ApiError("unauthorized", "not logged in")
        for ident in found.values():
            await identities.revoke(ident)
        self.set_status(204)
        self.finish()


# Verifying against a dummy hash when the user does not exist keeps the
# answer time the same, so login does not reveal which usernames exist.
_DUMMY_HASH = hash_password("not-a-real-password")


class MeHandler(BaseHandler):
    async def get(self) -> None:
        ident = self.require_user()
        user = await User.aget_or_none(User.id == ident.id)
        if user is None:
            raise ApiError("unauthorized", "this account no longer exists")
        self.send(user.public())
