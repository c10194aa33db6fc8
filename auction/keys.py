"""Every Redis key, channel and stream name of the product, spelled once.

The hall, the workers, run.py and the Lua scripts (which get their keys as
KEYS[], never build them) all take names from here. A name that two processes
share is a protocol between them: change it here or nowhere.
"""
from __future__ import annotations

Id = int | str

# -- the bid engine (auction/lua/*.lua) ----------------------------------------------
DEADLINES = "lots:deadlines"    # zset lot id -> deadline ms of every live lot, swept by workers
INGEST = "bids:ingest"          # stream of accepted bids, read into the database (workers/bidlog.py)
INGEST_GROUP = "db"             # its consumer group
NOTIFY = "notify:events"        # stream of notices for workers (outbid), written by bid.lua
NOTIFY_GROUP = "notify"         # its consumer group (workers/notify.py)
# zset lot id -> closed_at ms: closed in Redis, not yet settled in the database.
# Written by the close itself (common.lua close_lot), cleared only after a
# committed settlement; the sweep re-queues what stays too long.
UNSETTLED = "lots:unsettled"


def settle_requeued(lot_id: Id) -> str:
    """Set while the sweep's re-queued settlement of a lot is given time to run."""
    return f"settle:requeued:{lot_id}"


def lot(lot_id: Id) -> str:
    """The lot's live state (hash): status, price, leader, deadline, rules."""
    return f"lot:{lot_id}"


def lot_stream(lot_id: Id) -> str:
    """The lot's event stream: stream id `<seq>-<sub>` gives seq and replay."""
    return f"lot:{lot_id}:events"


def lot_deposits(lot_id: Id) -> str:
    """Set of user ids with a lot deposit in force."""
    return f"lot:{lot_id}:deposits"


def session_deposits(session_id: Id) -> str:
    """Set of user ids with a session deposit in force (covers every lot)."""
    return f"session:{session_id}:deposits"


def lot_preemption(lot_id: Id) -> str:
    """The lot's pre-emption holders (hash: user id -> rank), read by bid.lua."""
    return f"lot:{lot_id}:preempt"


def bid_ref(lot_id: Id, user_id: Id, ref: str) -> str:
    """The stored answer of a bid `ref` (idempotency, 24 h)."""
    return f"ref:{lot_id}:{user_id}:{ref}"


def bid_rate(user_id: Id) -> str:
    """Bids of one user in the current one-second window, across every socket,
    HTTP and hall process (checked inside bid.lua)."""
    return f"rl:bid:{user_id}"


# -- pub/sub channels (workers and Lua publish, every hall process listens) --------------
LOT_CHANNEL_PREFIX = "lot:"
USER_CHANNEL_PREFIX = "user:"
OPS_CHANNEL = "ops"               # operator alerts, as they happen
HALL_CONTROL = "hall:control"     # always subscribed, so a hall's listen() never runs dry;
                                  # also carries logouts (hall/identity.py) to every hall


def lot_channel(lot_id: Id) -> str:
    return f"{LOT_CHANNEL_PREFIX}{lot_id}"


def user_channel(user_id: Id) -> str:
    return f"{USER_CHANNEL_PREFIX}{user_id}"


def channel_id(channel: str, prefix: str) -> int | None:
    """The lot or user id of a channel name with this prefix, else None."""
    if channel.startswith(prefix):
        tail = channel[len(prefix):]
        if tail.isdigit():
            return int(tail)
    return None


# -- schedules (workers/schedule.py) --------------------------------------------------------
PUBLISH_AT = "sessions:publish"   # zset session id -> when to publish (定时发布)
START_AT = "sessions:starts"      # zset session id -> when to start (定时拍卖)
SWEEP_LOCK = "sweep:lock"         # one sweep at a time across workers


def closing_timer(deadline_ms: Id) -> str:
    """Set once a short-ETA close is armed for this deadline."""
    return f"closing:at:{deadline_ms}"


# -- tasks (the hall submits, workers report) --------------------------------------------------
TASK_FAILURES = "tasks:failures"  # list, newest first: recent task failures for operators
TASKS_DONE_PREFIX = "tasks:done:"  # + epoch second: tasks finished in that second
# The outbox (auction/outbox.py): tasks submitted and not yet finished.
TASK_OUTBOX = "tasks:outbox"          # hash: task id -> {name, kwargs, attempts, at_ms}
TASK_OUTBOX_DUE = "tasks:outbox:due"  # sorted set: task id -> when to look at it again (ms)
TASK_OUTBOX_LOCK = "tasks:outbox:lock"  # one hall sweeps at a time


def task_owner(task_id: str) -> str:
    """Who submitted a task and its kind (only they may read it)."""
    return f"task:{task_id}"


def tasks_done(epoch_s: int) -> str:
    return f"{TASKS_DONE_PREFIX}{epoch_s}"


# -- the operators ----------------------------------------------------------------------------------
JOBS_PENDING = "jobs:pending"    # list of job records (JSON) not yet in the database (auction/jobs.py)
JOBS_FLUSH_LOCK = "jobs:flush:lock"  # one writer of a batch of them at a time
TASKS_FAILED_TOTAL = "tasks:failed:total"  # hash: task name -> failures since the start (/metrics)
JOBS_WAIT_MS_TOTAL = "jobs:wait:ms"  # hash: job kind -> milliseconds its runs waited in the queue (/metrics)
JOBS_WAIT_COUNT = "jobs:wait:count"  # hash: job kind -> runs counted in JOBS_WAIT_MS_TOTAL
BANNED_USERS = "users:banned"    # set of banned user ids (hall: bids and deposits refused)
OPS_ALERTS = "ops:alerts"         # list, newest first (LPUSH), last 200 kept
HALL_STATS_PREFIX = "hall:stats:"  # + hall name: that process's rooms, for the overview


def hall_stats(hall_name: str) -> str:
    return f"{HALL_STATS_PREFIX}{hall_name}"


# -- money -----------------------------------------------------------------------------------------------
def refund_retry(refund_id: Id) -> str:
    """Set when the money sweep re-queued a pending WeChat refund (once a minute)."""
    return f"refund:retry:{refund_id}"


def payment_refund_retry(payment_refund_id: Id) -> str:
    """The same for a refund of money nothing wants (models.PaymentRefund)."""
    return f"payrefund:retry:{payment_refund_id}"


def payment_check(payment_id: Id) -> str:
    """Set while a pending WeChat payment's gateway query is due again later."""
    return f"paycheck:{payment_id}"


def topup_close(topup_id: Id) -> str:
    """Set while an expired top-up's close (query, then close) is not due again."""
    return f"topupclose:{topup_id}"


def wechat_notification(notification_id: str) -> str:
    """A WeChat Pay notification id handled once (replays change nothing)."""
    return f"wxnotify:{notification_id}"


def wechat_nonce(nonce: str) -> str:
    return f"wxnonce:{nonce}"


# -- notifications (workers/notify.py) ----------------------------------------------------------------
NOTIFY_DRAIN_LOCK = "notify:drain:lock"


def outbid_sms(user_id: Id, lot_id: Id) -> str:
    """Set while an outbid SMS to this user for this lot is throttled."""
    return f"notify:outbid:{user_id}:{lot_id}"


def closing_notice(lot_id: Id, deadline_ms: Id) -> str:
    """Set once the closing-soon notice for this deadline went out."""
    return f"notify:closing:{lot_id}:{deadline_ms}"


def closing_sms(user_id: Id, lot_id: Id) -> str:
    return f"notify:closing-sms:{user_id}:{lot_id}"


def sms_sent(out_id: str) -> str:
    """The provider's answer for an SMS out_id (sends are idempotent)."""
    return f"sms:sent:{out_id}"


# -- the hall's own limits ---------------------------------------------------------------------------
def rate_window(name: str, window: int) -> str:
    """One window's counter of the hall's sliding-window rate limiter (hall/ratelimit.py)."""
    return f"rl:{name}:{window}"


# -- sessions (hall/identity.py) -------------------------------------------------------------------
def revoked_token(token_id: str) -> str:
    """Set at logout for the rest of that token's lifetime: the token no longer
    authenticates anywhere (every hall process checks it at each request)."""
    return f"revoked:{token_id}"


# -- WeChat login (hall/handlers/wechat.py) ---------------------------------------------
def wechat_oauth_ticket(ticket: str) -> str:
    """A one-time, short-lived login ticket handed to the page after the
    official-account OAuth came back (the page trades it for a token)."""
    return f"wechat:ticket:{ticket}"
