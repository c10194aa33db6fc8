"""Signed, expiring tokens and slow password hashes."""
from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

import settings

_hasher = PasswordHasher()  # argon2id with the library's recommended cost
_ALG = "HS256"


@dataclass(frozen=True, slots=True)
class Identity:
    id: int
    name: str
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def issue_token(user_id: int, name: str, role: str, ttl_s: int | None = None) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "name": name, "role": role, "iat": now,
              "exp": now + (ttl_s or settings.TOKEN_TTL_S)}
    return jwt.encode(claims, settings.HALL_SECRET, algorithm=_ALG)


def read_token(token: str | None) -> Identity | None:
    """The identity in a valid token, or None (bad signature, expired, junk)."""
    if not token or len(token) > 2048:
        return None
    try:
        claims = jwt.decode(token, settings.HALL_SECRET, algorithms=[_ALG],
                            options={"require": ["exp", "sub"]})
        return Identity(int(claims["sub"]), str(claims.get("name", "")),
                        str(claims.get("role", "bidder")))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
