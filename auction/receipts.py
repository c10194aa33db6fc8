"""Signed bid receipts (API.md, "Trust": verifiable bid log).

An accepted bid that entered the lot's chain carries

    receipt = {lot_id, seq, amount, bidder_ref, at_ms, kid, sig}

where `sig` is the hall's Ed25519 signature (base64) over the other fields as
canonical JSON (sorted keys, no spaces). The bid script writes those fields
itself, already canonical, at the end of its stored answer (auction/lua/bid.lua),
so the hall only signs the bytes and splices the signature in: no JSON decode
or encode on the bid path. Signing is libsodium's (PyNaCl), the fastest
Ed25519 at hand here (measured in docs/benchmarks.md).

The key: HALL_SIGNING_KEY (base64 of the 32-byte seed). In dev a key is made
once in the data folder; production refuses to start without one
(settings.check_production). Retired public keys stay published at
GET /api/keys (HALL_SIGNING_KEYS_RETIRED) so old receipts still verify.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing

from auction.keyfiles import create_once

RECEIPT_MARK = b',"receipt":{'
FIELDS = ("amount", "at_ms", "bidder_ref", "kid", "lot_id", "seq")


def kid_of(public_key: bytes) -> str:
    """A key's id: hex, so the bid script can write it without escaping."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


class Signer:
    """The hall's receipt key: signs receipt bodies, publishes its public half."""

    def __init__(self, seed: bytes, retired: tuple[bytes, ...] = ()) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(key.verify_key)
        self._secret = seed + self.public_key  # libsodium's 64-byte secret key
        self.kid = kid_of(self.public_key)
        self._kid_field = f'"kid":"{self.kid}"'.encode()
        self.retired = retired

    def sign(self, message: bytes) -> str:
        return base64.b64encode(nacl.bindings.crypto_sign(message, self._secret)[:64]).decode()

    def seal(self, answer: bytes) -> bytes:
        """The bid script's answer with its receipt signed; unchanged when it
        has none (a rejection, or only a higher private maximum: no new bid)."""
        at = answer.rfind(RECEIPT_MARK)
        if at < 0:
            return answer
        body = answer[at + len(RECEIPT_MARK) - 1:-1]
        if self._kid_field not in body:
            # Stored under an earlier key (a replay after a key rotation):
            # the same bid, re-issued under the key in force.
            fields = json.loads(body)
            fields["kid"] = self.kid
            body = canonical(fields)
        return b"".join((answer[:at], RECEIPT_MARK[:-1], body[:-1], b',"sig":"',
                         self.sign(body).encode(), b'"}}'))

    def keys(self) -> list[dict]:
        """GET /api/keys: the key in force first, then the retired ones."""
        return [{"kid": kid_of(pk), "alg": "Ed25519",
                 "public_key": base64.b64encode(pk).decode()}
                for pk in (self.public_key, *self.retired)]


def decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SystemExit(f"{what} must be the base64 of 32 bytes")
    return raw


def load_signer(key: str, retired: str, data_dir: Path | str, production: bool) -> Signer:
    """From HALL_SIGNING_KEY; in dev, without one, a key made once in the data folder."""
    old = tuple(decode_key(k, "HALL_SIGNING_KEYS_RETIRED entries")
                for k in retired.split(",") if k.strip())
    if key:
        return Signer(decode_key(key, "HALL_SIGNING_KEY"), old)
    if production:
        raise SystemExit("HALL_ENV=production needs HALL_SIGNING_KEY (base64 of a 32-byte "
                         "Ed25519 seed; make one with `python run.py signing-key`)")
    path = Path(data_dir) / "keys" / "receipts_ed25519.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    create_once(path, base64.b64encode(nacl.signing.SigningKey.generate().encode()))
    return Signer(decode_key(path.read_text(), str(path)), old)


def new_key() -> str:
    """A fresh HALL_SIGNING_KEY value."""
    return base64.b64encode(nacl.signing.SigningKey.generate().encode()).decode()


def verify(receipt: dict, public_keys: dict[str, bytes]) -> tuple[bool, str]:
    """Is `receipt` signed by one of `public_keys` ({kid: raw key})?"""
    missing = [f for f in (*FIELDS, "sig") if f not in receipt]
    if missing:
        return False, f"the receipt lacks {', '.join(missing)}"
    key = public_keys.get(receipt["kid"])
    if key is None:
        return False, f"no published key {receipt['kid']!r}"
    body = canonical({f: receipt[f] for f in FIELDS})
    try:
        nacl.signing.VerifyKey(key).verify(body, base64.b64decode(receipt["sig"], validate=True))
    except (nacl.exceptions.BadSignatureError, binascii.Error, ValueError):
        return False, f"receipt for bid {receipt['seq']}: the signature does not match its fields"
    return True, "signature valid"
