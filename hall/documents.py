"""Documents for people: the session's results as CSV, the sale confirmation as PDF.

The PDF (成交确认书) is drawn with fpdf2 in the Noto Sans CJK SC face of the
`fonts-noto-cjk` package (`make system-deps` installs it): fpdf2 reads the
OpenType/CFF collection through fontTools and embeds only the glyphs used,
so Chinese titles and names come out as real text (`pdftotext` reads them
back), not as boxes. Both are built from plain dicts so they can be tested
without the hall.

The confirmation states its fields once more as canonical JSON (sorted keys,
no spaces) with the hall's Ed25519 signature over exactly those bytes, by the
receipt key published at GET /api/keys (auction/receipts.py): a buyer can show
the document is the hall's and unaltered without asking the hall.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from auction.receipts import Signer

# The Simplified Chinese face of the collection: Debian's path, then others'.
CJK_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"),
)
SC_INDEX = 2  # JP, KR, SC, TC, HK ...: SC is the third face
CHINA = timezone(timedelta(hours=8))  # sale documents show Beijing time, whoever prints them

RESULT_COLUMNS = ("lot_id", "position", "title", "result", "hammer_yuan", "premium_yuan",
                  "due_yuan", "winner", "order_status", "bid_count", "closed_at")


class NoFont(RuntimeError):
    """No CJK font on this machine (install fonts-noto-cjk)."""


def yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen // 100}.{fen % 100:02d}"


def when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def results_csv(rows: list[dict]) -> bytes:
    """UTF-8 with a BOM, so Excel opens it with the Chinese intact; CRLF rows (RFC 4180)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in RESULT_COLUMNS})
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def cjk_font() -> Path:
    for path in CJK_FONTS:
        if path.exists():
            return path
    raise NoFont("no Noto Sans CJK font found; install the fonts-noto-cjk package")


CONFIRMED = ("order_id", "lot_id", "lot_title", "session_id", "session_title", "hammer",
             "premium", "deposit_credited", "due", "winner", "closed_at_ms", "chain_head")


def confirmation_fields(order: dict, signer: Signer | None = None) -> dict:
    """What the document states, in a fixed order; their canonical JSON, its
    digest and (with `signer`) the hall's signature over it and the key id."""
    fields = {k: order.get(k) for k in CONFIRMED}
    if signer is not None:
        fields["kid"] = signer.kid
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    fields["canonical"] = canonical
    fields["digest"] = hashlib.sha256(canonical.encode()).hexdigest()
    fields["sig"] = signer.sign(canonical.encode()) if signer is not None else None
    return fields


def confirmation_pdf(order: dict, signer: Signer | None = None) -> bytes:
    """成交确认书 / Sale confirmation for one order, bilingual, one A4 page."""
    from fpdf import FPDF

    f = confirmation_fields(order, signer)
    pdf = FPDF(format="A4")
    pdf.set_title(f"成交确认书 #{f['order_id']}")
    pdf.set_creator("auction hall")
    pdf.add_font("cjk", fname=str(cjk_font()), collection_font_number=SC_INDEX)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    pdf.set_font("cjk", size=20)
    pdf.cell(0, 12, "成交确认书", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 7, "Sale confirmation", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    rows = [
        ("确认书编号 / No.", f"{f['order_id']}"),
        ("专场 / Session", f"#{f['session_id']} {f['session_title']}"),
        ("拍品 / Lot", f"#{f['lot_id']} {f['lot_title']}"),
        ("买受人 / Buyer", f"{f['winner']}"),
        ("成交价 / Hammer price", f"¥{yuan(f['hammer'])}"),
        ("佣金 / Buyer's premium", f"¥{yuan(f['premium'])}"),
        ("已抵扣保证金 / Deposit credited", f"¥{yuan(f['deposit_credited'] or 0)}"),
        ("应付 / Due", f"¥{yuan(f['due'])}"),
        ("成交时间 / Closed at", f"{when(f['closed_at_ms'])} (UTC+8)"),
        ("出价链 / Bid chain head", f"{f['chain_head'] or '—'}"),
    ]
    label_w = 62
    for label, value in rows:
        pdf.set_font("cjk", size=10)
        pdf.cell(label_w, 9, label, border="B")
        pdf.set_font("cjk", size=12)
        pdf.multi_cell(0, 9, value, border="B", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(0, 5, "买受人须在付款截止前付清应付款项；逾期未付视为悔拍，保证金不予退还。\n"
                         "The buyer pays the amount due by the payment deadline; an unpaid order "
                         "is forfeited with its deposit.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.multi_cell(0, 5, f"SHA-256 of the fields above (canonical JSON): {f['digest']}",
                   new_x="LMARGIN", new_y="NEXT")
    if f["sig"]:
        pdf.ln(2)
        pdf.multi_cell(0, 5, f"拍卖行签名 / Hall signature (Ed25519, key {f['kid']}, "
                             "GET /api/keys), over these bytes:", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=7)
        pdf.multi_cell(0, 4, f"SIGNED {f['canonical']}", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 4, f"SIGNATURE {f['sig']}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
