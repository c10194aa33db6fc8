"""Leases on the messages a worker holds, so a dead worker's tasks come back soon.

kombu's Redis transport emulates acknowledgements: a delivered message is
written to the `unacked` hash with its delivery time in the `unacked_index`
sorted set, and `restore_visible` puts back on its queue every message
delivered longer ago than the visibility timeout. Two things make that slow or
wrong for us on its own:

- Under `-P eventlet` the worker has no event loop timer: kombu tries a restore
  only when a poll of the broker comes back empty, and scans on every tenth of
  those (`unacked_restore_throttle`), so a busy worker never restores and an
  idle one only now and then.
- The delivery time never changes, so a visibility timeout short enough to
  bring a dead worker's tasks back quickly would also hand out again the tasks
  a live worker is still holding (prefetched, waiting for a retry's countdown,
  or running).

So each worker renews, every `LEASE_RENEW_S`, the index time of the messages it
still holds (ZADD XX: a message acknowledged meanwhile is not brought back),
and runs `restore_visible` itself on the same timer. A message held by a live
worker is always younger than the visibility timeout; one held by a worker
that died is older than it within `VISIBILITY_TIMEOUT_S`, and the next restore
by any live worker (or by the dead one's replacement) puts it back. Every task
here is idempotent, so a worker that merely stalled past its lease and has its
task run twice changes nothing.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps

import settings

logger = logging.getLogger(__name__)

# How many unacked messages one restore pass may put back (kombu's default, 10,
# would need minutes for a dead worker's prefetched backlog).
RESTORE_BATCH = 1000


def held_tags(qos: Any) -> list[str]:
    """Delivery tags this channel holds and has not acknowledged."""
    dirty = qos._dirty
    return [tag for tag in list(qos._delivered) if tag not in dirty]


def renew(qos: Any, now: float | None = None) -> int:
    """Move the lease of every held message to `now`; how many were held."""
    tags = held_tags(qos)
    if tags:
        stamp = time.time() if now is None else now
        with qos.channel.conn_or_acquire() as client:
            client.zadd(qos.unacked_index_key, {tag: stamp for tag in tags}, xx=True)
    return len(tags)


def restore_expired(qos: Any) -> None:
    """Put back on their queues the messages whose lease ran out."""
    qos.restore_visible(num=RESTORE_BATCH, interval=1)


class Leases(bootsteps.StartStopStep):
    """Consumer step: renew this worker's leases and restore expired ones."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def start(self, c: Any) -> None:
        self.tref = c.timer.call_repeatedly(settings.LEASE_RENEW_S, self.tick, (c,),
                                            priority=10)

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop

    def tick(self, c: Any) -> None:
        consumer = getattr(c, "task_consumer", None)
        channel = getattr(consumer, "channel", None)
        qos = getattr(channel, "qos", None)
        if qos is None or not hasattr(qos, "restore_visible"):
            return  # not connected (yet), or not the Redis transport
        try:
            renew(qos)
            restore_expired(qos)
        except Exception as exc:  # the broker away: the consumer reconnects, we retry next tick
            logger.warning("could not renew task leases: %r", exc)
