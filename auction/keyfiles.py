"""Key material created once in the data folder (dev keys: WeChat Pay's, the receipts')."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_once(path: Path, data: bytes) -> None:
    """Publish ``data`` at ``path`` unless it exists; first writer wins, atomically.

    Several processes (hall, workers, simulator) may start at once on a fresh
    directory; writing to a temp file and hard-linking it into place means a
    reader never sees a half-written key and nobody overwrites a key another
    process is already using.
    """
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
