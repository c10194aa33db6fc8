"""POST /api/auth/register, POST /api/auth/login, GET /api/me."""
from __future__ import annotations

import re

from peewee import IntegrityError

import settings

from hall.auth import hash_password, issue_token, verify_password
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.validate import text
from models import User

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
        await self.application.limiter.hit(f"register:{self.request.remote_ip}",
                                           settings.LOGIN_RATE_PER_MIN, 60)
        # Hashing is deliberately slow (argon2): keep it off the IOLoop.
        pw_hash = await self.application.run_blocking(hash_password, password)
        try:
            user = await User.acreate(username=username, password_hash=pw_hash, phone=phone)
        except IntegrityError:
            raise ApiError("conflict", "that username is taken")
        self.set_token_cookie(user)
        self.send(session_answer(user), 201)

    def set_token_cookie(self, user: User) -> None:
        self.set_cookie("hall_token", session_answer(user)["token"], httponly=True,
                        samesite="Lax", expires_days=7)


class LoginHandler(RegisterHandler):
    async def post(self) -> None:
        data = self.json_body()
        username = text(data, "username", max_len=32)
        password = text(data, "password", max_len=128)
        await self.application.limiter.hit(f"login:{self.request.remote_ip}:{username}",
                                           settings.LOGIN_RATE_PER_MIN, 60)
        user = await User.aget_or_none(User.username == username)
        ok = await self.application.run_blocking(
            verify_password, user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not ok:
            raise ApiError("unauthorized", "wrong username or password")
        self.set_token_cookie(user)
        self.send(session_answer(user))


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
