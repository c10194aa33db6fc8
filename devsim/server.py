"""Run a Tornado app on its own asyncio loop in a background thread.

The local simulators of outside services (WeChat Pay, SMS) use this so a
test can start one with a plain function call and stop it again.
"""
from __future__ import annotations

import asyncio
import json
import signal
import threading
from typing import Any

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web


class ControlHandler(tornado.web.RequestHandler):
    """A simulator's test-only control endpoints: plain JSON, no signatures."""

    def initialize(self, gw: Any) -> None:
        self.gw = gw

    def send(self, status: int, obj: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(obj, ensure_ascii=False))

    def body_json(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400)
        return data


class ResetHandler(ControlHandler):
    """POST /sim/reset: the simulated service forgets everything."""

    def post(self) -> None:
        self.gw.reset()
        self.send(200, {"ok": True})


def gateway_app(gw: Any, routes: list[tuple]) -> tornado.web.Application:
    """A simulator's application: its routes (path, handler[, more arguments]),
    then /sim/reset; every handler gets `gw`."""
    return tornado.web.Application([
        (route[0], route[1], {"gw": gw, **(route[2] if len(route) > 2 else {})})
        for route in routes + [(r"/sim/reset", ResetHandler)]])


def run_forever(app: tornado.web.Application, port: int, host: str, banner: str) -> None:
    """Serve `app` in this process until SIGINT or SIGTERM (`python -m devsim.*`)."""
    async def serve() -> None:
        app.listen(port, host)
        print(banner, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C still raises
                pass
        await stop.wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


class ThreadedServer:
    """A started server: `url`, `port`, and `stop()`."""

    def __init__(self, app: tornado.web.Application, port: int = 0, host: str = "127.0.0.1",
                 name: str = "sim") -> None:
        # Bound here, in the caller's thread, so the port is listening before
        # we return: no sleeps, no polling.
        sockets = tornado.netutil.bind_sockets(port, host)
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                async def listen() -> tornado.httpserver.HTTPServer:
                    server = tornado.httpserver.HTTPServer(app)
                    server.add_sockets(sockets)
                    return server

                box["server"] = self._loop.run_until_complete(listen())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                box["error"] = exc
                started.set()
                return
            started.set()
            try:
                self._loop.run_forever()
            finally:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()

        self._thread = threading.Thread(target=run, name=f"{name}-{self.port}", daemon=True)
        self._thread.start()
        started.wait()
        if "error" in box:
            for s in sockets:
                s.close()
            raise box["error"]
        self._server: tornado.httpserver.HTTPServer = box["server"]

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.stop()
            await self._server.close_all_connections()
            tornado.httpclient.AsyncHTTPClient().close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
