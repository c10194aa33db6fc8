"""Keep a task's failure inside its green thread (the eventlet pool's safety net).

Celery's eventlet pool runs each task in a green thread whose last step is the
result callback: store the result in Redis, then acknowledge the message. If
Redis is unreachable at that moment (a restart, a Sentinel failover) the callback
raises, and eventlet's GreenThread re-raises into its hub. The hub's answer to an
exception coming out of a file-descriptor callback is to print it and *remove that
descriptor*: every listener on the fd number goes, and fd numbers are reused at
once, so the one removed is often the consumer's new broker connection. The
worker then looks alive and never reads another task (celery/celery#8091 and its
kin report the symptom). Here the exception is logged and dropped instead: the
message was not acknowledged (acks_late), so the broker hands it out again and the
task (idempotent, every one of ours) runs again harmlessly.

The remote-control (pidbox) loop runs in a green thread of the same pool and
raises the same way when its broker connection drops; the consumer restarts it
on reconnecting, so there too the error is logged and kept from the hub.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


def guarded(apply_target: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the pool's per-task runner so nothing it raises reaches the hub."""
    if getattr(apply_target, "hall_guarded", False):
        return apply_target

    def apply_target_guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return apply_target(*args, **kwargs)
        except Exception:
            log.exception("a task ran but its result or acknowledgement was not recorded; "
                          "its message stays unacknowledged and will be delivered again")
            return None

    apply_target_guarded.hall_guarded = True  # type: ignore[attr-defined]
    return apply_target_guarded


def guarded_pidbox_loop(loop: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap gPidbox.loop: a lost broker connection ends it quietly."""
    if getattr(loop, "hall_guarded", False):
        return loop

    def loop_guarded(self: Any, c: Any) -> None:
        try:
            loop(self, c)
        except Exception as exc:  # the consumer starts a new loop when it reconnects
            log.warning("remote control loop stopped (%r); it restarts with the consumer", exc)

    loop_guarded.hall_guarded = True  # type: ignore[attr-defined]
    return loop_guarded


def install() -> None:
    """Guard the eventlet pool (call before the pool starts; idempotent).

    TaskPool.on_apply looks up the module's apply_target at every call, so
    replacing it there covers every task the pool runs.
    """
    from celery.concurrency import eventlet as eventlet_pool
    from celery.worker import pidbox

    eventlet_pool.apply_target = guarded(eventlet_pool.apply_target)
    pidbox.gPidbox.loop = guarded_pidbox_loop(pidbox.gPidbox.loop)
