"""POST /api/pay/wechat/notify: WeChat Pay's signed payment notification.

The signature, timestamp and encryption are checked here, before anything
is trusted; the money itself moves in a worker, idempotently by
out_trade_no, so a replayed notification changes nothing.
"""
from __future__ import annotations

import json
import logging

from auction import keys, tasknames
from auction.wechatpay import InvalidNotification, parse_notification
from hall.errors import ApiError
from hall.handlers.base import BaseHandler
from hall.tasks import submit
from models import Payment

logger = logging.getLogger(__name__)


class WeChatNotifyHandler(BaseHandler):
    async def post(self) -> None:
        config = self.application.wechat
        if config is None:
            raise ApiError("unavailable", "WeChat Pay is not configured")
        try:
            tx = parse_notification(config, self.request.headers, self.request.body)
        except InvalidNotification as exc:
            logger.warning("rejected WeChat notification: %s", exc.reason)
            self.set_status(401)
            self.finish(json.dumps({"code": "unauthorized", "message": "bad notification signature"}))
            return
        # Replay: the same notification id (or nonce) is handled once. WeChat
        # re-delivers a notification with the same id and a new nonce until it
        # gets a 2xx; an attacker replaying a captured one reuses both.
        id_key = keys.wechat_notification(str(tx.get("id")))
        nonce_key = keys.wechat_nonce(str(tx.get("nonce")))
        first = await self.redis.set(id_key, 1, nx=True, ex=7 * 24 * 3600)
        nonce_new = await self.redis.set(nonce_key, 1, nx=True, ex=3600)
        if not first or not nonce_new:
            if first:
                await self.redis.delete(id_key)
            self.set_status(200)
            self.finish(json.dumps({"code": "SUCCESS", "message": "already handled"}))
            return
        payment = await Payment.aget_or_none(Payment.out_trade_no == str(tx.get("out_trade_no")))
        if payment is None:
            self.set_status(404)
            self.finish(json.dumps({"code": "not_found", "message": "unknown out_trade_no"}))
            return
        try:
            await submit(self.application, tasknames.WECHAT_PAID, payment.user_id,
                         "wechat_payment", {"out_trade_no": payment.out_trade_no,
                                            "transaction_id": str(tx.get("transaction_id", "")),
                                            "trade_state": str(tx.get("trade_state", "")),
                                            "total": (tx.get("amount") or {}).get("total"),
                                            "user_id": payment.user_id})
        except ApiError:
            # Not queued: forget we saw it, so WeChat's re-delivery is handled.
            await self.redis.delete(id_key, nonce_key)
            raise
        self.set_status(200)
        self.finish(json.dumps({"code": "SUCCESS", "message": "OK"}))
