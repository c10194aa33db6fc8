"""The per-lot hash chain of accepted bids (API.md, "Trust": verifiable bid log).

    hash(seq) = sha256_hex(hash(seq - 1) + canonical_json({lot_id, seq, amount, bidder_ref, at_ms}))

with 64 zeros before seq 1. `bidder_ref` is an opaque pseudonym of the bidder:
an HMAC of (lot, user) under a key derived from HALL_SECRET, so it is stable
within one lot and unlinkable across lots, and nobody without the secret can
tell who it is. The workers' bid log computes the chain in `seq` order as bids
reach the database (workers/bidlog.py); a settled lot publishes its last hash
(`chain_head`). Anyone can recompute the chain from the public history
(`verify`); a bid whose amount, order or presence was changed afterwards gives
a different head.

Pure functions, no I/O: the verifier (`run.py verify`) uses them too.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable

ZERO = "0" * 64


def canonical(fields: dict) -> str:
    """Sorted keys, no spaces: the same bytes wherever it is computed."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def ref_key(secret: str) -> bytes:
    """The pseudonym key, separated from every other use of the hall's secret."""
    return hmac.new(secret.encode(), b"auction-hall bidder_ref v1", hashlib.sha256).digest()


def bidder_ref(key: bytes, lot_id: int, user_id: int) -> str:
    return hmac.new(key, f"{lot_id}:{user_id}".encode(), hashlib.sha256).hexdigest()[:16]


def bidder_refs(key: bytes) -> Callable[[int, int], str]:
    """`bidder_ref` under one key, with the HMAC's keyed state made once and
    copied per call: the same digests at about half the cost (the bid log
    makes one per new bidder in a lot; tests check both give the same)."""
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def ref(lot_id: int, user_id: int) -> str:
        mac = keyed.copy()
        mac.update(f"{lot_id}:{user_id}".encode())
        return mac.hexdigest()[:16]
    return ref


def entry(lot_id: int, seq: int, amount: int, ref: str, at_ms: int) -> dict:
    return {"lot_id": lot_id, "seq": seq, "amount": amount, "bidder_ref": ref, "at_ms": at_ms}


def link(prev: str, fields: dict) -> str:
    return hashlib.sha256((prev + canonical(fields)).encode()).hexdigest()


def link_entry(prev: str, lot_id: int, seq: int, amount: int, ref: str, at_ms: int) -> str:
    """`link(prev, entry(...))` without the JSON encoder: the entry's fields are
    integers and a hex pseudonym, so this f-string is its canonical form (the
    bid log links every bid; tests check both give the same bytes)."""
    body = (f'{{"amount":{int(amount)},"at_ms":{int(at_ms)},"bidder_ref":"{ref}",'
            f'"lot_id":{int(lot_id)},"seq":{int(seq)}}}')
    return hashlib.sha256((prev + body).encode()).hexdigest()


def verify(lot_id: int, bids: Iterable[dict], head: str | None) -> tuple[bool, str]:
    """Recompute the chain over `bids` (the history's items) and compare with
    `head` and with any hash an item carries: (ok, what is wrong or the head)."""
    prev, expected_seq = ZERO, 1
    for b in bids:
        if b.get("seq") != expected_seq:
            return False, f"bid seq {b.get('seq')} where {expected_seq} was due (a bid missing or moved)"
        prev = link(prev, entry(lot_id, b["seq"], b["amount"], b.get("bidder_ref", ""), b["at_ms"]))
        if b.get("hash") not in (None, prev):
            return False, f"bid {b['seq']}: its hash does not follow from the bids before it"
        expected_seq += 1
    if head is not None and prev != head:
        return False, f"the chain ends in {prev[:12]}…, the lot's chain_head is {head[:12]}…"
    return True, prev
