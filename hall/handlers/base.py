"""The base handler: JSON in and out, contract errors, who is asking."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, TYPE_CHECKING

import tornado.web

from hall.auth import Identity
from hall.clientaddr import client_address
from hall.errors import ApiError
from hall.validate import parse_json_object

if TYPE_CHECKING:
    from hall.app import HallApplication
    from hall.lots import LotReader

logger = logging.getLogger(__name__)


def _backend_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "a backend is down or restarting", not "a bug"."""
    from peewee import InterfaceError, OperationalError
    from redis.exceptions import RedisError
    errors: list[type[BaseException]] = [RedisError, OperationalError, InterfaceError,
                                         asyncio.TimeoutError, ConnectionError]
    try:
        import asyncpg
        errors += [asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                   asyncpg.exceptions.ConnectionDoesNotExistError]
    except ImportError:
        pass
    return tuple(errors)


BACKEND_DOWN = _backend_errors()


class BaseHandler(tornado.web.RequestHandler):
    application: "HallApplication"

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")

    # -- shared resources (Flower style: handlers never import the app) -------
    @property
    def redis(self) -> Any:
        return self.application.redis

    @property
    def db(self) -> Any:
        return self.application.db

    @property
    def lots(self) -> "LotReader":
        return self.application.lots

    # -- identity ---------------------------------------------------------
    async def prepare(self) -> None:
        """Who is asking, decided before the method runs: the Bearer token,
        unless revoked, with the account's role as the database has it now
        (hall/identity.py). A subclass's prepare() awaits this first."""
        token = self.bearer_token()
        self.current_user = (await self.application.identities.resolve(token)
                             if token else None)

    def bearer_token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[7:].strip() or None
        return None

    def get_current_user(self) -> Identity | None:
        return None  # set by prepare()

    @property
    def client_ip(self) -> str:
        """The client's address for per-address limits (hall/clientaddr.py)."""
        return client_address(self.request.remote_ip or "", self.request.headers)

    def require_user(self) -> Identity:
        user = self.current_user
        if user is None:
            raise ApiError("unauthorized", "log in first (Authorization: Bearer <token>)")
        return user

    def require_operator(self) -> Identity:
        user = self.require_user()
        if not user.is_operator:
            raise ApiError("forbidden", "operators only")
        return user

    # -- JSON ---------------------------------------------------------------
    def json_body(self) -> dict:
        return parse_json_object(self.request.body)

    async def in_transaction(self, fn: Any) -> Any:
        """`fn()` in one write transaction off the IOLoop (it writes and calls
        audit.record); a Refused inside becomes its API error."""
        from auction.errors import Refused
        from models import write_transaction

        def run() -> Any:
            with write_transaction():
                return fn()
        try:
            return await self.db.run(run)
        except Refused as exc:
            raise ApiError(exc.code, exc.message)

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = exc.body()
        elif isinstance(exc, tornado.web.HTTPError) and status_code == 405:
            body = {"code": "invalid", "message": "method not allowed"}
        elif status_code == 404:
            body = {"code": "not_found", "message": "no such resource"}
        elif status_code < 500:
            body = {"code": "invalid", "message": "bad request"}
        elif status_code == 503:
            body = {"code": "unavailable", "message": "a backend is unavailable; retry shortly"}
        else:
            body = {"code": "internal", "message": "internal error"}
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ApiError):
            if self._finished:
                return
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        if isinstance(e, BACKEND_DOWN):
            # A backend is down or restarting: tell the client to retry.
            logger.warning("backend unavailable: %s: %s", type(e).__name__, e)
            if not self._finished:
                self.send_error(503)
            return
        super()._handle_request_exception(e)


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise ApiError("not_found", "no such resource")
