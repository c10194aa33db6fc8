"""Local simulators of the outside services the product talks to (dev only).

`run.py all` starts the WeChat Pay simulator in the embedded default, so a
demo needs no WeChat account; the test suite uses both. Each speaks its
service's real protocol, signatures included, so the production client code
is what runs against it. Never started when HALL_ENV=production.

server      run a Tornado app on a thread of its own (start/stop from a test)
wechatpay   WeChat Pay API v3 gateway: signed requests and answers, encrypted
            notifications, refunds, order close
sms         Alibaba Cloud SendSms (ACS3-HMAC-SHA256 signatures)
"""
