"""The eventlet pool survives a task whose last step fails (Redis gone mid-task).

The failure mode is eventlet's, so it is reproduced exactly, in a child process
under eventlet: a consumer green thread waits to read a socket (as kombu waits on
the broker connection), a task green thread was last woken through the same file
descriptor, and the task's result callback raises ConnectionError (as storing a
result does while Redis restarts). Unguarded, the hub removes every listener on
that descriptor and the consumer never wakes again: the worker is alive but
takes no more tasks. workers.pool's guard must keep the consumer reading.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from procs import ROOT

SCRIPT = textwrap.dedent("""
    import eventlet
    eventlet.monkey_patch()
    import os, socket, sys
    from eventlet.hubs import trampoline
    from celery.concurrency import eventlet as eventlet_pool
    if sys.argv[1] == "guarded":
        from workers.pool import install
        install()

    broker, peer = socket.socketpair()
    got = []
    def consumer():
        got.append(broker.recv(1))
    listening = eventlet.spawn(consumer)
    eventlet.sleep(0)  # the consumer now listens on the broker socket

    def task():
        trampoline(broker.fileno(), write=True)  # woken through the same fd
        return "done"
    def store_result(_ret):
        raise ConnectionError("Error 111 connecting to redis. ECONNREFUSED.")
    running = eventlet.spawn(eventlet_pool.apply_target, task, (), {}, store_result, None,
                             os.getpid)
    try:
        running.wait()  # its last step failed: in the hub (plain) or in its green thread
    except ConnectionError:
        pass

    peer.send(b"t")  # the next task message arrives
    with eventlet.Timeout(5, False):
        listening.wait()  # the consumer read it, unless it was cut off
    print("consumer got", got)
""")


def _run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_unguarded_pool_loses_its_consumer():
    """The trap is real: without the guard the consumer is cut off."""
    out = _run("plain")
    assert "Removing descriptor" in out.stderr, out.stderr
    assert "consumer got []" in out.stdout, out.stdout


def test_guarded_pool_keeps_consuming_and_logs_the_failure():
    out = _run("guarded")
    assert "consumer got [b't']" in out.stdout, (out.stdout, out.stderr)
    assert "Removing descriptor" not in out.stderr, out.stderr
    assert "will be delivered again" in out.stderr, out.stderr


def test_a_channel_used_after_close_fails_as_a_connection_error(stack):
    """kombu's other trap (workers/broker.py): a pooled producer whose channel was
    closed by a broker restart publishes through it. Plain kombu raises
    AttributeError, which nothing retries (a closed lot's settlement was lost
    that way in a CI run); ours raises a connection error, which kombu's
    ensure() retries on a fresh channel."""
    from kombu import Connection

    from workers.broker import transport_for

    conn = Connection(stack.redis.url, transport=transport_for(stack.redis.url))
    try:
        channel = conn.channel()
        channel.close()
        with pytest.raises(conn.recoverable_connection_errors):
            channel._put("test:closed-channel", {"body": "settle lot 1"})
    finally:
        conn.release()
