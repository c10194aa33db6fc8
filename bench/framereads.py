"""The room socket's read path against Tornado's own, on one server, in one run.

    python bench/framereads.py [--clients 50] [--messages 400] [--runs 3]

A Tornado server (uvloop, as the hall) answers every client frame with a short
frame, on four routes that differ only in how frames are read and handed on:
- `stock`: Tornado's WebSocketProtocol13 and IOStream as they come;
- `stream`: the stream stays registered for reads between frames
  (`hall/frames.py` `SteadyReadStream`) and nothing else;
- `hall`: what a room socket gets after the upgrade (`FrameWriter.attach_stream`):
  that stream, feeding each read to a parser that handles every complete
  frame where it lands (`SteadyFrames`);
- `task`: the same, with `on_message` a coroutine, as the hall's is: a Task per
  message, and the next frame waits for it.
--clients sockets each send --messages bid-sized frames (about 110 bytes),
one at a time, waiting for each answer, as a bidder does. The variants take
turns, --runs times each; the figure is the server's CPU (user + system, from
/proc) per message, and the ratios to stock from the same runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from websockets.asyncio.client import connect  # noqa: E402

from common import cpu_split, emit_result  # noqa: E402
from stack import PY, ROOT, free_port, raise_nofile  # noqa: E402

VARIANTS = {"stock": "stock Tornado",
            "stream": "+ SteadyReadStream",
            "hall": "+ SteadyFrames (the room socket)",
            "task": "+ on_message a coroutine (the hall's)"}
FRAME = json.dumps({"op": "bid", "lot_id": 12, "amount": 123400,
                    "ref": "0123456789abcdef0123456789abcdef"}).encode().decode()


def serve(port: int) -> None:
    """The server process: both routes on one port."""
    sys.path.insert(0, str(ROOT))
    import tornado.web
    import tornado.websocket
    import uvloop

    from hall.frames import READ_LIMIT, FrameWriter, SteadyReadStream

    class Stock(tornado.websocket.WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            self.write_message('{"type":"accepted"}')

    class Stream(Stock):
        def open(self) -> None:
            stream = self.ws_connection.stream
            stream.__class__ = SteadyReadStream
            stream.max_buffer_size = min(stream.max_buffer_size, READ_LIMIT)

    class Hall(FrameWriter, tornado.websocket.WebSocketHandler):
        def open(self) -> None:
            self.attach_stream(self.ws_connection.stream, 1 << 20)

        def on_message(self, message: str | bytes) -> None:
            self.write_message('{"type":"accepted"}')

        def on_close(self) -> None:
            self.release_stream()

    class Task(Hall):
        async def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
            self.write_message('{"type":"accepted"}')

    async def main() -> None:
        app = tornado.web.Application([(r"/stock", Stock), (r"/stream", Stream), (r"/hall", Hall),
                                       (r"/task", Task)])
        app.listen(port, "127.0.0.1")
        print("ready", flush=True)
        await asyncio.Event().wait()

    uvloop.install()
    asyncio.run(main())


async def load(url: str, clients: int, messages: int) -> None:
    async def one() -> None:
        async with connect(url, compression=None, ping_interval=None) as ws:
            for _ in range(messages):
                await ws.send(FRAME)
                await ws.recv()
    await asyncio.gather(*(one() for _ in range(clients)))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        serve(a.serve)
        return {}
    if a.quick:
        a.clients, a.messages, a.runs = 4, 50, 1
    raise_nofile()
    port = free_port()
    proc = subprocess.Popen([PY, str(Path(__file__).resolve()), "--serve", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        if "ready" not in proc.stdout.readline():
            raise RuntimeError("the frame server did not start")
        per: dict[str, list[float]] = {v: [] for v in VARIANTS}
        n = a.clients * a.messages
        for _ in range(a.runs):
            for variant in VARIANTS:
                before = sum(cpu_split(proc.pid))
                asyncio.run(load(f"ws://127.0.0.1:{port}/{variant}", a.clients, a.messages))
                per[variant].append((sum(cpu_split(proc.pid)) - before) / n * 1e6)
    finally:
        proc.terminate()
        proc.wait(10)
    out: dict = {"bench": "framereads", "clients": a.clients, "messages": a.messages, "runs": per}
    print(f"framereads: {a.clients} sockets x {a.messages} frames, {a.runs} runs; server CPU per "
          f"message (a frame read, an answer written); ratio to stock in the same run")
    for variant, label in VARIANTS.items():
        ratios = [v / s for v, s in zip(per[variant], per["stock"])]
        out[f"{variant}_us_per_message"] = statistics.median(per[variant])
        out[f"ratio_{variant}_vs_stock"] = statistics.median(ratios)
        print(f"  {label:36} {out[f'{variant}_us_per_message']:6.1f} us  x{statistics.median(ratios):.2f}"
              f"  ({', '.join(f'{v:.1f}' for v in per[variant])})")
    emit_result("framereads", out)
    return out


if __name__ == "__main__":
    main()
