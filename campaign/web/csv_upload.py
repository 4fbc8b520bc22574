"""Upload, preview, confirm: the forms and the carrying of the file between the two steps.

The preview hands the uploaded file back to the confirm form, compressed; nothing is kept
server-side. Shared by every CSV import page (posts, engagement figures).
"""

from __future__ import annotations

import base64
import binascii
import zlib

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField


class UploadForm(FlaskForm):  # type: ignore[misc]
    file = FileField("CSV file")


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    content = HiddenField()


def carried_limit(max_bytes: int) -> int:
    """How long the carried form of a file of at most `max_bytes` can be: base64 of zlib
    output is at most a third longer than the file, plus a little."""
    return max_bytes * 4 // 3 + 1024


def pack(data: bytes) -> str:
    """The file as the confirm form carries it: zlib, then URL-safe base64 (no escaping needed)."""
    return base64.urlsafe_b64encode(zlib.compress(data, 9)).decode("ascii")


def unpack(carried: str, max_bytes: int) -> bytes | None:
    """The file back from the confirm form, or None if it is damaged or larger than `max_bytes`."""
    if not carried or len(carried) > carried_limit(max_bytes):
        return None
    try:
        compressed = base64.urlsafe_b64decode(carried.encode("ascii"))
        inflater = zlib.decompressobj()
        data = inflater.decompress(compressed, max_bytes + 1)
    except (binascii.Error, UnicodeEncodeError, ValueError, zlib.error):
        return None
    if not inflater.eof or len(data) > max_bytes:
        return None  # truncated, or more than an upload may hold
    return data
