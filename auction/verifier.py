"""Check a lot's bid history against its published chain, over the public API only.

    python run.py verify LOT_ID [--base http://hall.example.com]

Fetches `GET /api/lots/{id}` (its `chain_head` once settled) and every page
of `GET /api/lots/{id}/bids`, recomputes the chain (auction/bidchain.py) and
says whether the history is the one the hall published: a bid whose amount,
order or presence was changed since gives another head. Needs nothing but
the standard library and this module's neighbour, so a bidder can run it.
"""
from __future__ import annotations

import json
import urllib.request
from typing import Any

from auction import bidchain

PAGE = 1000


def _get(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base.rstrip('/')}{path}", timeout=30) as resp:
        return json.loads(resp.read())


def history(base: str, lot_id: int) -> list[dict]:
    bids: list[dict] = []
    while True:
        page = _get(base, f"/api/lots/{lot_id}/bids?since_seq={bids[-1]['seq'] if bids else 0}"
                          f"&limit={PAGE}")["bids"]
        bids.extend(page)
        if len(page) < PAGE:
            return bids


def verify_lot(base: str, lot_id: int) -> tuple[bool, str]:
    """(ok, a line saying why) for lot `lot_id` on the hall at `base`."""
    lot = _get(base, f"/api/lots/{lot_id}")
    head = lot.get("chain_head")
    if head is None:
        return False, f"lot {lot_id} has no chain_head yet (status {lot.get('status')}): nothing to check against"
    bids = history(base, lot_id)
    ok, why = bidchain.verify(lot_id, bids, head)
    if ok:
        return True, f"lot {lot_id}: {len(bids)} bids, chain intact, head {head}"
    return False, f"lot {lot_id}: {why}"
