"""Lot photos: checked, re-encoded and thumbnailed with Pillow.

An upload is never stored as sent: it is decoded (JPEG, PNG or WebP only),
turned upright by its EXIF orientation, scaled to at most MAX_EDGE and saved
again as a JPEG without any metadata (camera serial numbers, GPS), with a
THUMB_EDGE thumbnail beside it. The file's header is read before any pixel:
an image that would decode to more than MAX_PIXELS (a "decompression bomb",
a few KB that unpack to gigabytes) is refused without being decoded.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024       # API.md: up to 10 MB
MAX_PIXELS = 50_000_000            # a 50-megapixel camera; far below Pillow's own bomb limit
MAX_EDGE = 2048
THUMB_EDGE = 480
FORMATS = ("JPEG", "PNG", "WEBP")
QUALITY = 85


class BadImage(Exception):
    """An upload refused with a contract error code (`unsupported_media`, `invalid`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Photo:
    id: str          # content hash of the re-encoded image: the same photo twice is one file
    full: bytes
    thumb: bytes
    width: int
    height: int


def _flatten(im: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency goes onto white (as a catalogue page would show it)."""
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        ground = Image.new("RGB", im.size, (255, 255, 255))
        ground.paste(im, mask=im.getchannel("A"))
        return ground
    return im.convert("RGB") if im.mode != "RGB" else im


def _jpeg(im: Image.Image) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile= or comment: nothing of the original's metadata is written.
    im.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def process(data: bytes) -> Photo:
    """The stored form of an upload, or BadImage saying what is wrong with it."""
    if len(data) > MAX_BYTES:
        raise BadImage("invalid", f"a photo is at most {MAX_BYTES // (1024 * 1024)} MB")
    if not data:
        raise BadImage("invalid", "the file is empty")
    with warnings.catch_warnings():
        # Pillow only warns below twice its own limit; here any bomb is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise BadImage("unsupported_media", "the file is not a JPEG, PNG or WebP image")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise BadImage("invalid", "the image has too many pixels")
        width, height = im.size
        if width * height > MAX_PIXELS:
            raise BadImage("invalid", f"the image has too many pixels ({width}×{height}); "
                                      f"at most {MAX_PIXELS // 1_000_000} megapixels")
        try:
            im.load()
            im = ImageOps.exif_transpose(im)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
            raise BadImage("invalid", f"the image is damaged or truncated ({type(exc).__name__})")
    im = _flatten(im)
    im.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    full = _jpeg(im)
    thumb_im = im.copy()
    thumb_im.thumbnail((THUMB_EDGE, THUMB_EDGE), Image.Resampling.LANCZOS)
    return Photo(id=hashlib.sha256(full).hexdigest()[:32], full=full, thumb=_jpeg(thumb_im),
                 width=im.width, height=im.height)
