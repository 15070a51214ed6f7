"""Image input for Grok (JPEG/PNG data URLs, checked from the bytes) and the opaque `user` hash.

Types are read from magic numbers and confirmed by Pillow, never from file names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io

from PIL import Image, UnidentifiedImageError

from bot.errors import BadInput
from bot.grok.types import ImagePart

MAX_IMAGE_BYTES = 10 * 1024 * 1024
ACCEPTED = "JPEG or PNG images up to 10 MiB"
DETAILS = ("auto", "low", "high")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
IMAGE_TYPES = frozenset(_PIL_FORMATS)  # the MIME types `image_part` accepts


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type the bytes start like (JPEG, PNG, GIF, WebP), or None."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_part(data: bytes, *, detail: str | None = None) -> ImagePart:
    """An ImagePart with a base64 data URL; raises BadInput unless the bytes are a JPEG or PNG
    image of at most 10 MiB."""
    if detail is not None and detail not in DETAILS:
        raise BadInput(f"Image detail must be one of {', '.join(DETAILS)}.")
    if len(data) > MAX_IMAGE_BYTES:
        raise BadInput(f"That image is too large ({len(data) / 1048576:.1f} MiB): {ACCEPTED}.")
    mime = sniff_image_type(data)
    if mime not in IMAGE_TYPES:
        raise BadInput(f"That file is not a supported image: {ACCEPTED}.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            ok = image.format == _PIL_FORMATS[mime]
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        ok = False
    if not ok:
        raise BadInput(f"That image could not be read: {ACCEPTED}.")
    return ImagePart(f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", detail)


def decode_base64_image(value: str) -> tuple[bytes, str | None]:
    """Bytes and the declared MIME type of `b64_json`, with or without a `data:*;base64,` prefix.
    Raises ValueError when it is not base64."""
    declared: str | None = None
    if value.startswith("data:"):
        header, sep, value = value.partition(",")
        if not sep:
            raise ValueError("a data URL without a comma")
        declared = header[5:].split(";", 1)[0] or None
    try:
        return base64.b64decode(value, validate=True), declared
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


def user_hash(platform: str, user_id: str, *, salt: str = "") -> str:
    """An opaque, stable id for xAI's `user` field (abuse monitoring): never the raw platform id.
    A deployment-wide `salt` makes it unlinkable to the platform id by enumeration."""
    digest = hashlib.sha256(f"grokbot\x00{salt}\x00{platform}\x00{user_id}".encode()).hexdigest()
    return digest[:32]
