"""Input checks shared by HTTP handlers and WebSocket ops.

Money must be a JSON integer (never a float, string or boolean), positive and
at most 10^12 fen; anything else is `invalid`, before it reaches Redis.

JSON bodies and socket frames go through `parse_json_object`: besides valid
JSON, at most MAX_DEPTH levels of nesting (deeper input would exhaust the
parser's recursion, a 500), no key twice in one object (`{"amount": 10**12+1,
"amount": 1}` must not quietly mean 1), and no lone UTF-16 surrogate
(`"\ud800"`) in any key or string: such a string cannot be stored or sent
on, so it is `invalid` here rather than an error deep inside.
"""
from __future__ import annotations

import json
import re
from typing import Any

import settings
from hall.errors import ApiError

MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadJson(ApiError):
    """`invalid` JSON; `data` holds the parsed value when only its strings
    were at fault (a lone surrogate), so a socket can still answer the op."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__("invalid", message)
        self.data = data


def is_unicode(value: str) -> bool:
    """No lone surrogate: the string can be encoded, stored and sent on."""
    return _SURROGATE.search(value) is None


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


# One decoder for every call: `json.loads` given a hook builds a JSONDecoder
# and its scanner each time (2 % of the hall's samples per bid).
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def _loads(raw: bytes | str) -> Any:
    """`json.loads(raw, object_pairs_hook=_pairs)`, with the decoder made once."""
    if isinstance(raw, str):
        if raw.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
        return _DECODER.decode(raw)
    return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def _check(value: Any) -> str | None:
    """What is wrong with a parsed value (too deep, a lone surrogate), or None.
    Iterative: no recursion on attacker-chosen depth."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "strings must be valid Unicode (a lone surrogate is not)"
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return f"JSON may nest at most {MAX_DEPTH} levels"
            if isinstance(item, dict):
                for key, sub in item.items():
                    if _SURROGATE.search(key):
                        return "strings must be valid Unicode (a lone surrogate is not)"
                    stack.append((sub, depth + 1))
            else:
                stack.extend((sub, depth + 1) for sub in item)
    return None


def _nothing_to_find(raw: bytes | str) -> bool:
    """Whether `_check` must find nothing, from the raw text alone (a bid's
    frame: 0.6 us here against 2-4 us for the walk). A lone surrogate needs a
    `\\u` escape, or, in bytes, its UTF-8 form, which starts with 0xED (json
    reads bytes with "surrogatepass"; UTF-16 and -32, which it also reads,
    have zero bytes); nesting deeper than MAX_DEPTH needs
    more brackets than that. Both are counted over the whole text, strings
    included, so a frame that merely might have one is walked."""
    if isinstance(raw, bytes):
        if b"\\" in raw or b"\xed" in raw or b"\x00" in raw:  # 0: UTF-16 or -32
            return False
        return raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
    if "\\" in raw or _SURROGATE.search(raw):
        return False
    return raw.count("{") + raw.count("[") <= MAX_DEPTH


def parse_json(raw: bytes | str) -> Any:
    """A JSON value under the rules above; BadJson (`invalid`) otherwise."""
    try:
        data = _loads(raw)
    except RecursionError:
        raise BadJson(f"JSON may nest at most {MAX_DEPTH} levels")
    except ValueError as exc:  # UnicodeDecodeError is one too
        if str(exc) == "duplicate key":
            raise BadJson("a key appears twice in one object")
        raise BadJson("not valid JSON")
    if _nothing_to_find(raw):
        return data
    problem = _check(data)
    if problem is not None:
        raise BadJson(problem, data if problem.startswith("strings") else None)
    return data


def parse_json_object(body: bytes | str) -> dict:
    try:
        data = parse_json(body or b"{}")
    except BadJson as exc:
        raise BadJson(f"the body: {exc.message}", exc.data)
    if not isinstance(data, dict):
        raise ApiError("invalid", "the body must be a JSON object")
    return data


def money(data: dict, field: str, required: bool = True, allow_zero: bool = False) -> int | None:
    value = data.get(field)
    if value is None:
        if required:
            raise ApiError("invalid", f"{field} is required")
        return None
    if type(value) is not int:  # bool is an int subclass: refuse it too
        raise ApiError("invalid", f"{field} must be an integer number of fen")
    if value < 0 or (value == 0 and not allow_zero) or value > settings.MAX_AMOUNT:
        raise ApiError("invalid", f"{field} must be between 1 and {settings.MAX_AMOUNT} fen")
    return value


def integer(data: dict, field: str, required: bool = True, minimum: int = 0,
            maximum: int = 2**53, default: int | None = None) -> int | None:
    value = data.get(field)
    if value is None:
        if required:
            raise ApiError("invalid", f"{field} is required")
        return default
    if type(value) is not int or not minimum <= value <= maximum:
        raise ApiError("invalid", f"{field} must be an integer from {minimum} to {maximum}")
    return value


def text(data: dict, field: str, required: bool = True, max_len: int = 200,
         min_len: int = 1, default: str | None = None) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise ApiError("invalid", f"{field} is required")
        return default
    if not isinstance(value, str) or not min_len <= len(value) <= max_len:
        raise ApiError("invalid", f"{field} must be a string of {min_len} to {max_len} characters")
    return value


def choice(data: dict, field: str, options: tuple[str, ...]) -> str:
    value = data.get(field)
    if value not in options:
        raise ApiError("invalid", f"{field} must be one of {', '.join(options)}")
    return value


def increment(value: Any) -> int | list:
    """A fixed increment, or a ladder [[below_amount, step], ...] rising by band."""
    if type(value) is int:
        money({"increment": value}, "increment")
        return value
    if not isinstance(value, list) or not value or len(value) > 20:
        raise ApiError("invalid", "increment must be an amount or a ladder [[below, step], ...]")
    last_below = 0
    for i, band in enumerate(value):
        if not isinstance(band, list) or len(band) != 2:
            raise ApiError("invalid", "each ladder band is [below_amount, step]")
        below, step = band
        money({"step": step}, "step")
        if below is None:
            if i != len(value) - 1:
                raise ApiError("invalid", "only the last ladder band may have no upper bound")
            continue
        money({"below": below}, "below")
        if below <= last_below:
            raise ApiError("invalid", "ladder bands must rise")
        last_below = below
    return value


# Ids stay below 2^53 so that JavaScript clients hold them exactly.
MAX_ID = 2**53 - 1


def positive_id(raw: str) -> int:
    """An id from a URL path; `not_found` for anything that cannot be one."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ApiError("not_found", "no such resource")
    if not 0 < value <= MAX_ID:
        raise ApiError("not_found", "no such resource")
    return value


def lot_id(data: dict) -> int:
    """`lot_id` of a socket message; `invalid` unless a positive integer id."""
    value = data.get("lot_id")
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise ApiError("invalid", "lot_id must be a positive integer")
    return value
