"""Where lot photos are kept: a small storage interface and its local-disk store.

The hall only ever calls `put(name, data, content_type)` and hands out the
URL it returns, so another store can take over without touching the upload
code. The embedded default (`LocalImageStore`) writes under the data folder
(HALL_DATA_DIR/media/images) and the hall serves the files at /media/images/
(nginx can serve the same folder in deploy/).

An S3-compatible store (MinIO, Aliyun OSS, Tencent COS, AWS S3) takes over
with a class of the same two methods: `put` calls the bucket's PutObject
(boto3 `put_object(Bucket=..., Key=name, Body=data, ContentType=...)`) and
returns the bucket's public or CDN URL for `name`; the CDN's host goes in
HALL_IMAGE_HOSTS so the pages' CSP lets browsers load it. Names are content
hashes, so objects never change and can be cached for ever.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

import settings

URL_PREFIX = "/media/images/"


class ImageStore(Protocol):
    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Store `data` under `name` (idempotent) and return its URL."""

    def url(self, name: str) -> str:
        """The URL `name` is served at."""


class LocalImageStore:
    """Files in one folder, written whole or not at all (a temp file, then a rename)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or settings.DATA_DIR / "media" / "images"

    def put(self, name: str, data: bytes, content_type: str) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / name
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return self.url(name)

    def url(self, name: str) -> str:
        return URL_PREFIX + name
