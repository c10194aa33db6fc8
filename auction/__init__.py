"""The shared core of the auction hall: what the hall and the workers both use.

The two process shells (`hall/`, Tornado; `workers/`, Celery) import from here
and never from each other; nothing here imports either shell, tornado or
eventlet (the import-linter contracts in pyproject.toml hold this).

keys        every Redis key, channel and stream name
engine      the Lua bid engine's scripts and their arguments (lua/)
snapshot    the lot snapshot and the rules it shows (increments, masks)
wire        event wire formats and compact JSON
redisconn   Redis / Sentinel clients and Celery's broker URLs
tasknames   task names, queues, routes, and the one way to queue a task
errors      domain refusals and gateway errors
coupons     coupon rules
ledger      the only code that changes a balance
wechatpay   the WeChat Pay API v3 protocol: client and notification check
"""
