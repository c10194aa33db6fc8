"""POST /api/admin/images (multipart, field `file`): a lot photo; /media/images/...: serving them.

The body is streamed so the role is checked before any of it is read, and
so a too-large upload is counted, not kept: bytes past the limit are
dropped and the answer is a clear `invalid`, instead of the connection
being cut at the hall's usual 1 MB body cap.
"""
from __future__ import annotations

import tornado.httputil
import tornado.web

from hall import images
from hall.errors import ApiError
from hall.handlers.admin import AdminHandler
from hall.webheaders import StaticFiles

# Read up to this much so a 20 MB photo still gets its answer; past it the
# connection is closed (no one uploads a lot photo that big by mistake).
READ_CAP = 4 * images.MAX_BYTES
MULTIPART_SLACK = 64 * 1024  # the form's boundaries and headers around the file


@tornado.web.stream_request_body
class ImageUploadHandler(AdminHandler):
    """Upload a lot photo (operator): re-encoded, metadata stripped, thumbnailed."""

    async def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        await super().prepare()  # 401/403 before a byte of the body is read
        self.request.connection.set_max_body_size(READ_CAP)

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= images.MAX_BYTES + MULTIPART_SLACK:
            self._chunks.append(chunk)

    async def post(self) -> None:
        if self._size > images.MAX_BYTES + MULTIPART_SLACK:
            self._chunks.clear()
            raise ApiError("invalid", f"a photo is at most {images.MAX_BYTES // (1024 * 1024)} MB")
        content_type = self.request.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise ApiError("invalid", "send the photo as multipart/form-data, field `file`")
        arguments: dict = {}
        files: dict = {}
        try:
            tornado.httputil.parse_body_arguments(content_type, b"".join(self._chunks),
                                                  arguments, files)
        except tornado.httputil.HTTPInputError as exc:
            raise ApiError("invalid", f"the multipart form cannot be read: {exc}"[:300])
        self._chunks.clear()
        upload = (files.get("file") or [None])[0]
        if upload is None:
            raise ApiError("invalid", "no file: send the photo in the field `file`")
        run = self.application.run_blocking
        try:
            # Decoding and encoding take tens of milliseconds: off the IOLoop.
            photo = await run(images.process, upload.body)
        except images.BadImage as exc:
            raise ApiError(exc.code, exc.message)
        store = self.application.image_store
        url = await run(store.put, f"{photo.id}.jpg", photo.full, "image/jpeg")
        thumb_url = await run(store.put, f"{photo.id}.thumb.jpg", photo.thumb, "image/jpeg")
        self.send({"id": photo.id, "url": url, "thumb_url": thumb_url, "width": photo.width,
                   "height": photo.height}, 201)


class MediaFiles(StaticFiles):
    """/media/images/<hash>.jpg: content-addressed, so cacheable for ever."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "public, max-age=31536000, immutable")
