"""Signed, expiring tokens and slow password hashes.

A token only says who it was issued to (`sub`) and until when (`exp`); each
carries a random `jti` so that one login can be revoked alone. Whether it still
counts (logout) and what the account may do (its role) are decided at each
request by hall/identity.py, never by the claims alone.
"""
from __future__ import annotations

import hashlib
import secrets
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
    token_id: str = ""  # the token's jti (or a digest of it): what logout revokes
    exp: int = 0        # when the token expires (epoch s)

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
              "exp": now + (ttl_s or settings.TOKEN_TTL_S), "jti": secrets.token_urlsafe(16)}
    return jwt.encode(claims, settings.HALL_SECRET, algorithm=_ALG)


def read_token(token: str | None) -> Identity | None:
    """The claims of a validly signed, unexpired token, or None (bad signature,
    expired, junk). Not yet an answer to "who is asking": the token may have
    been revoked and the role changed since (hall/identity.py checks both)."""
    if not token or len(token) > 2048:
        return None
    try:
        claims = jwt.decode(token, settings.HALL_SECRET, algorithms=[_ALG],
                            options={"require": ["exp", "sub"]})
        jti = claims.get("jti")
        token_id = (str(jti) if isinstance(jti, str) and 0 < len(jti) <= 64
                    else hashlib.sha256(token.encode()).hexdigest()[:32])
        return Identity(int(claims["sub"]), str(claims.get("name", "")),
                        str(claims.get("role", "bidder")), token_id, int(claims["exp"]))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
