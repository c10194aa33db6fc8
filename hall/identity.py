"""Who is asking: a token, checked against logouts and against the account.

A signed token (hall/auth.py) is not enough on its own:

* **Logout** puts the token's id on a deny list in Redis for the rest of its
  lifetime (`keys.revoked_token`) and tells every hall process on
  `keys.HALL_CONTROL`, which closes the sockets opened with it. Every request
  and every socket handshake checks the deny list, so the token stops working
  at once, on every hall process.
* **The role and the name come from the database**, not from the claims. A
  bidder's row may be reused for `settings.ROLE_CACHE_S` seconds by one hall
  process; an operator's role is read at every request, so a demotion takes
  effect on the next call. A deleted account is nobody.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import settings
from auction import keys
from hall.auth import Identity, read_token
from hall.dbtask import own_task
from models import User

logger = logging.getLogger(__name__)

_CACHE_MAX = 50_000


class Identities:
    def __init__(self, redis: Any, cache_s: float | None = None) -> None:
        self.redis = redis
        self.cache_s = settings.ROLE_CACHE_S if cache_s is None else cache_s
        self._accounts: dict[int, tuple[float, str, str]] = {}  # id -> (until, name, role)

    async def resolve(self, token: str | None) -> Identity | None:
        """The identity a request carries, or None (no token, a bad, expired or
        revoked one, an account that no longer exists). Backend errors
        (Redis, the database) are raised: the caller answers 503."""
        claims = read_token(token)
        if claims is None:
            return None
        if await self.redis.exists(keys.revoked_token(claims.token_id)):
            return None
        account = await self._account(claims.id)
        if account is None:
            return None
        name, role = account
        return Identity(claims.id, name, role, claims.token_id, claims.exp)

    async def resolve_again(self, ident: Identity) -> Identity | None:
        """An identity resolved earlier (a socket's), checked once more now."""
        if await self.is_revoked(ident):
            return None
        account = await self._account(ident.id)
        if account is None:
            return None
        return Identity(ident.id, account[0], account[1], ident.token_id, ident.exp)

    async def is_revoked(self, ident: Identity) -> bool:
        return bool(await self.redis.exists(keys.revoked_token(ident.token_id)))

    async def _account(self, user_id: int) -> tuple[str, str] | None:
        now = time.monotonic()
        hit = self._accounts.get(user_id)
        if hit is not None and hit[0] > now and hit[2] != "operator":
            return hit[1], hit[2]
        user = await _read_account(user_id)
        if user is None:
            self._accounts.pop(user_id, None)
            return None
        if len(self._accounts) >= _CACHE_MAX:
            self._accounts.clear()
        self._accounts[user_id] = (now + self.cache_s, user.username, user.role)
        return user.username, user.role

    async def revoke(self, ident: Identity) -> None:
        """Logout: the token is refused from now until it would have expired."""
        ttl = max(1, ident.exp - int(time.time()))
        await self.redis.set(keys.revoked_token(ident.token_id), 1, ex=ttl)
        await self.redis.publish(keys.HALL_CONTROL, json.dumps(
            {"op": "revoked", "user_id": ident.id, "token_id": ident.token_id}))


@own_task  # sockets ask at their handshake, in a task that lives as long as they do
async def _read_account(user_id: int) -> User | None:
    return await User.aget_or_none(User.id == user_id)
