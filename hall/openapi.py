"""The OpenAPI description served at /api/openapi.json, built from the routes.

Paths and methods come from the routes (hall/urls.py, handed in by the
application), so a new handler shows up by itself; request bodies for the operations that take one are described here.
"""
from __future__ import annotations

import re
from typing import Any

import settings

MONEY = {"type": "integer", "minimum": 1, "maximum": settings.MAX_AMOUNT,
         "description": "fen (1/100 yuan)"}
MONEY0 = {**MONEY, "minimum": 0}
MS = {"type": "integer", "minimum": 0, "maximum": 2**53, "description": "epoch milliseconds"}
TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
LONG_TEXT = {"type": "string", "maxLength": 10000}
SCENE = {"enum": ["jsapi", "native", "h5"],
         "description": "WeChat Pay scene (method wechat): default jsapi, which needs a bound openid"}
WECHAT_APP = {"enum": ["miniprogram", "official_account"]}
WX_CODE = {"type": "string", "pattern": "^[0-9A-Za-z_\\-]{8,128}$",
           "description": "the code from wx.login (or the OAuth redirect)"}
LADDER = {"type": "array", "minItems": 1, "maxItems": 20, "items": {
    "type": "array", "minItems": 2, "maxItems": 2,
    "prefixItems": [{"type": ["integer", "null"]}, MONEY]}}


def obj(required: list[str], **props: Any) -> dict:
    return {"type": "object", "required": required, "properties": props}


BODIES: dict[tuple[str, str], dict] = {
    ("post", "/api/auth/register"): obj(
        ["username", "password"],
        username={"type": "string", "minLength": 2, "maxLength": 32, "pattern": r"^[A-Za-z0-9_.\-]+$"},
        password={"type": "string", "minLength": 6, "maxLength": 128},
        phone={"type": "string", "maxLength": 20}),
    ("post", "/api/auth/login"): obj(["username", "password"], username=TEXT, password=TEXT),
    ("post", "/api/lots/{id}/bids"): obj(["ref"], amount=MONEY, max_amount=MONEY,
                                         ref={"type": "string", "minLength": 1, "maxLength": 64}),
    ("post", "/api/lots/{id}/deposit"): obj(["scope", "method"],
                                            scope={"enum": ["session", "lot"]},
                                            method={"enum": ["balance", "wechat"]},
                                            scene=SCENE, wechat_app=WECHAT_APP),
    ("post", "/api/orders/{id}/pay"): obj(["method"], method={"enum": ["balance", "wechat"]},
                                          coupon_id={"type": "integer", "minimum": 1},
                                          scene=SCENE, wechat_app=WECHAT_APP),
    ("post", "/api/me/topups"): obj(["amount"], amount={
        "type": "integer", "minimum": 1, "maximum": settings.TOPUP_MAX_FEN,
        "description": "fen to put into the balance by WeChat Pay (at most HALL_TOPUP_MAX_FEN)"},
        scene=SCENE, wechat_app=WECHAT_APP),
    ("post", "/api/auth/wechat"): obj(["code"], code=WX_CODE),
    ("post", "/api/me/wechat"): obj(["code"], code=WX_CODE, app=WECHAT_APP),
    ("post", "/api/auth/wechat/ticket"): obj(["ticket"], ticket={"type": "string", "minLength": 1,
                                                                 "maxLength": 64}),
    ("post", "/api/admin/sessions"): obj(["title", "deposit_amount"], title=TEXT,
                                         description=LONG_TEXT, deposit_amount=MONEY0,
                                         starts_at_ms=MS, stagger_s={"type": "integer",
                                                                     "minimum": 0, "maximum": 86400}),
    ("post", "/api/admin/sessions/{id}/lots"): obj(
        ["title", "start_price", "increment", "lot_deposit"], title=TEXT,
        description=LONG_TEXT, images={"type": "array", "maxItems": 20,
                                       "items": {"type": "string", "minLength": 1, "maxLength": 500}},
        start_price=MONEY, increment={"oneOf": [MONEY, LADDER]}, reserve_price=MONEY,
        lot_deposit=MONEY0, buyer_premium_bp={"type": "integer", "minimum": 0, "maximum": 5000},
        ends_at_ms=MS, ends_after_start_s={"type": "integer", "minimum": 1,
                                           "description": "or: seconds from the session's start"},
        extend_window_s={"type": "integer", "minimum": 0, "maximum": 86400},
        extend_by_s={"type": "integer", "minimum": 0, "maximum": 86400}),
    ("post", "/api/admin/sessions/{id}/publish"): obj([], at_ms=MS),
    ("post", "/api/admin/lots/{id}/preemption"): obj(
        ["user_id", "rank"], user_id={"type": "integer", "minimum": 1, "maximum": 2**53},
        rank={"type": "integer", "minimum": 1, "maximum": 1000,
              "description": "between holders bidding the same price the lower rank wins"}),
    ("post", "/api/admin/lots/{id}/{action}"): obj([], seconds={
        "type": "integer", "minimum": 1, "maximum": 600,
        "description": "fair-warning only: seconds left to the hammer (default HALL_FAIR_WARNING_S)"}),
    ("post", "/api/admin/users/{id}/credit"): obj(["amount"], amount=MONEY,
                                                  reason={"type": "string", "maxLength": 200}),
    ("post", "/api/admin/users/{id}/{ban_action}"): obj(
        ["reason"], reason={"type": "string", "minLength": 1, "maxLength": 200}),
    ("post", "/api/admin/sessions/{id}/reorder"): obj(
        ["lot_ids"], lot_ids={"type": "array", "maxItems": 1000,
                              "items": {"type": "integer", "minimum": 1}}),
    ("post", "/api/admin/users/{id}/coupons"): obj(
        ["kind", "value", "expires_at_ms"], kind={"enum": ["fixed", "percent"]},
        value={"type": "integer", "minimum": 1, "maximum": settings.MAX_AMOUNT,
               "description": "fen off (fixed) or 1-100 percent off (percent)"},
        min_spend=MONEY0, expires_at_ms={**MS, "description": "epoch ms, in the future"}),
}
FILES = {"/api/admin/sessions/{id}/results.csv": "text/csv",
         "/api/orders/{id}/confirmation.pdf": "application/pdf"}
ERROR = {"description": "an error: {code, message}",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
OK = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
PUBLIC = re.compile(r"^/api/(auth/.*|sessions.*|lots/\{id\}|lots/\{id\}/bids|openapi\.json|keys|pay/.*)$")


def _path(pattern: str) -> str:
    return (pattern.replace(r"([0-9]{1,19})", "{id}")
            .replace("(open|pause|resume|fair-warning|hammer)", "{action}")
            .replace(r"([A-Za-z0-9\-]{1,64})", "{task_id}")
            .replace("(ban|unban)", "{ban_action}")
            .replace("\\.", "."))


def _methods(cls: type) -> list[str]:
    found = []
    for method in ("get", "post", "patch", "delete"):
        for klass in cls.__mro__:
            if klass.__module__.startswith("tornado."):
                break
            if method in klass.__dict__:
                found.append(method)
                break
    return found


def build_spec(routes: list) -> dict:
    paths: dict[str, dict] = {}
    for entry in routes:
        pattern, cls = entry[0], entry[1]
        if not pattern.startswith("/api/") or pattern == "/api/.*":
            continue
        path = _path(pattern)
        params = [{"name": p, "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": r"^[0-9]{1,19}$"} if p == "id" else
                   {"type": "string", "enum": ["open", "pause", "resume", "fair-warning", "hammer"]}
                   if p == "action" else {"type": "string", "enum": ["ban", "unban"]}
                   if p == "ban_action" else {"type": "string", "maxLength": 64}}
                  for p in re.findall(r"\{(\w+)\}", path)]
        ops = {}
        for method in _methods(cls):
            doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
            op: dict[str, Any] = {
                "summary": doc, "operationId": f"{method}_{cls.__name__}", "parameters": params,
                "responses": {"200": OK, "201": OK, "202": OK, "204": {"description": "done"},
                              **{c: ERROR for c in ("400", "401", "403", "404", "409", "413", "415",
                                                    "429", "503")}}}
            kind = FILES.get(path)
            if kind is not None:  # a download: CSV or PDF, not JSON
                op["responses"]["200"] = {"description": "the file",
                                          "content": {kind: {"schema": {"type": "string"}}}}
            body = BODIES.get((method, path))
            if path == "/api/admin/images":
                op["requestBody"] = {"required": True, "content": {"multipart/form-data": {
                    "schema": obj(["file"], file={"type": "string", "format": "binary"})}}}
            elif body is not None:
                op["requestBody"] = {"required": True,
                                     "content": {"application/json": {"schema": body}}}
            elif method in ("post", "patch"):
                op["requestBody"] = {"required": False, "content": {"application/json": {
                    "schema": {"type": "object"}}}}
            if not (PUBLIC.match(path) and method == "get") and not path.startswith("/api/auth/") \
                    and path != "/api/pay/wechat/notify":
                op["security"] = [{"bearer": []}]
            ops[method] = op
        if ops:
            paths[path] = ops
    return {
        "openapi": "3.1.0",
        "info": {"title": "Auction hall", "version": "1.0.0",
                 "description": "Live auctions: HTTP API (WebSocket /ws: see docs/api.md). "
                                "Money is integer fen; times are epoch milliseconds."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}}}}},
    }
