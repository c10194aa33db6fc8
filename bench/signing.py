"""The receipt signature's cost per accepted bid, beside references in the same run.

    python bench/signing.py [--n 20000]

Times `Signer.seal` (auction/receipts.py: find the receipt in the bid script's
answer, sign it with libsodium, splice the signature in) on a real answer, and
beside it: the same signature with `cryptography` (OpenSSL), and a JSON decode
plus encode of the answer (what the hall's hot path avoids). CPU time
(process_time), best of 5 rounds. The issue's budget: under 10 % of the hall's
CPU per accepted bid (bench/bids.py, `hall us/bid`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auction.receipts import Signer  # noqa: E402


def per_call(fn, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        t = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t) / n)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    a = ap.parse_args()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = os.urandom(32)
    signer = Signer(seed)
    answer = (b'{"accepted":true,"amount":123400,"at_ms":1764600000123,"deadline_ms":1764600060000,'
              b'"leading":true,"price":123400,"seq":57,"receipt":{"amount":123400,'
              b'"at_ms":1764600000123,"bidder_ref":"9f3a9f3a9f3a9f3a","kid":"' + signer.kid.encode()
              + b'","lot_id":12,"seq":57}}')
    body = answer[answer.rfind(b',"receipt":') + 11:-1]
    openssl = Ed25519PrivateKey.from_private_bytes(seed)
    figures = {
        "seal (libsodium)": per_call(lambda: signer.seal(answer), a.n),
        "sign only, cryptography (OpenSSL)": per_call(lambda: openssl.sign(body), a.n),
        "json loads+dumps of the answer": per_call(lambda: json.dumps(json.loads(answer)), a.n),
    }
    for name, us in figures.items():
        print(f"  {name:38s} {us:7.1f} us per call")
    print("RESULT " + json.dumps({"bench": "signing", "us_per_call": figures}))


if __name__ == "__main__":
    main()
