"""Check a lot's bid history against its published chain, over the public API only.

    python run.py verify LOT_ID [--base http://hall.example.com] [--receipt FILE ...]

Fetches `GET /api/lots/{id}` (its `chain_head` once settled) and every page
of `GET /api/lots/{id}/bids`, recomputes the chain (auction/bidchain.py) and
says whether the history is the one the hall published: a bid whose amount,
order or presence was changed since gives another head.

Receipts (the `receipt` of `accepted` answers, saved by a bidder as JSON: one
object or a list) are checked too: signed by a key of `GET /api/keys`, and
their bid in the history exactly as receipted. So a bidder holding a receipt
can show that the hall dropped or altered their bid even if the chain was
recomputed over the altered history. Needs the standard library, PyNaCl and
this module's neighbours (auction/bidchain.py, auction/receipts.py).
"""
from __future__ import annotations

import json
import urllib.request
from typing import Any

from auction import bidchain, receipts as receipt_sig

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


def published_keys(base: str) -> dict[str, bytes]:
    import base64
    return {k["kid"]: base64.b64decode(k["public_key"]) for k in _get(base, "/api/keys")["keys"]}


def check_receipts(lot_id: int, bids: list[dict], given: list[dict],
                   keys: dict[str, bytes]) -> tuple[bool, str]:
    """Each receipt signed by a published key, and its bid in `bids` as receipted."""
    by_seq = {b.get("seq"): b for b in bids}
    for r in given:
        ok, why = receipt_sig.verify(r, keys)
        if not ok:
            return False, why
        if r["lot_id"] != lot_id:
            return False, f"the receipt for bid {r['seq']} is for lot {r['lot_id']}, not {lot_id}"
        bid = by_seq.get(r["seq"])
        if bid is None:
            return False, f"receipt for bid {r['seq']}: that bid is missing from the history"
        changed = [f for f in ("amount", "at_ms", "bidder_ref") if bid.get(f) != r[f]]
        if changed:
            return False, (f"receipt for bid {r['seq']}: the history's {', '.join(changed)} "
                           "differ from what the hall signed")
    return True, f"{len(given)} receipts signed and in the history"


def verify_lot(base: str, lot_id: int, given: list[dict] = ()) -> tuple[bool, str]:
    """(ok, a line saying why) for lot `lot_id` on the hall at `base`, and the
    receipts `given`."""
    lot = _get(base, f"/api/lots/{lot_id}")
    head = lot.get("chain_head")
    if head is None:
        return False, f"lot {lot_id} has no chain_head yet (status {lot.get('status')}): nothing to check against"
    bids = history(base, lot_id)
    if given:
        ok, why = check_receipts(lot_id, bids, list(given), published_keys(base))
        if not ok:
            return False, f"lot {lot_id}: {why}"
    ok, why = bidchain.verify(lot_id, bids, head)
    if ok:
        extra = f"; {len(given)} receipts signed and in the history" if given else ""
        return True, f"lot {lot_id}: {len(bids)} bids, chain intact, head {head}{extra}"
    return False, f"lot {lot_id}: {why}"


def load_receipts(paths: list[str]) -> list[dict]:
    out: list[dict] = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for item in data if isinstance(data, list) else [data]:
            out.append(item.get("receipt", item))  # a whole `accepted` answer will do
    return out
