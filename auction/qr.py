"""QR codes of WeChat Pay's Native ``code_url`` (a desktop page shows it; the
payer scans it with WeChat), rendered with segno, no network."""
from __future__ import annotations

import segno


def svg_data_uri(text: str) -> str:
    """``text`` as a QR code, an SVG ``data:`` URI for an ``<img>`` (the pages'
    CSP allows data: images; no script draws it). Error correction M and a
    4-module quiet zone, as scanners expect."""
    return segno.make_qr(text, error="m").svg_data_uri(scale=6, border=4, dark="#000",
                                                       light="#fff")
