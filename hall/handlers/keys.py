"""GET /api/keys: the public keys that sign bid receipts and sale confirmations."""
from __future__ import annotations

from hall.handlers.base import BaseHandler


class KeysHandler(BaseHandler):
    async def get(self) -> None:
        # Public and rarely changing: anyone verifying receipts may cache it.
        self.set_header("Cache-Control", "public, max-age=300")
        self.send({"keys": self.application.receipts.keys()})
