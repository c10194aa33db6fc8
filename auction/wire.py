"""Wire formats shared by the Lua scripts, the hall and the workers.

Events travel as compact JSON. On a lot channel each message carries a small
header, "<lot>|<seq>-<sub>|<uid>|<json>" (common.lua `emit`), so a hall can
route and de-duplicate an event without decoding its JSON.
"""
from __future__ import annotations

import json
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

EventId = tuple[int, int]


def dumps(data: Any) -> str:
    """Compact JSON, Chinese kept as is (what every message and answer uses)."""
    return _encode(data)


def dumpb(data: Any) -> bytes:
    return _encode(data).encode()


def parse_event_id(event_id: str) -> EventId:
    """A lot stream id "<seq>-<sub>" as a comparable pair."""
    seq, _, sub = event_id.partition("-")
    return int(seq), int(sub or 0)


def split_lot_message(data: bytes) -> tuple[int, str, str, bytes]:
    """(lot id, event id, bidder uid or "", JSON payload) of a lot channel message."""
    lot_id, event_id, uid, payload = data.split(b"|", 3)
    return int(lot_id), event_id.decode(), uid.decode(), payload
