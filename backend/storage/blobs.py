"""What every blob store is: keyed files with a content type and a time-limited download URL.

Keys are portable relative paths (``outputs/<job id>/0.webp``): the same key means the same
object on a local folder and on S3, so switching backends is configuration, not code.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

MAX_KEY_BYTES = 1024  # S3's limit; the local store keeps the same one so keys stay portable


class BlobNotFound(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no blob under key {key!r}")
        self.key = key


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size_bytes: int
    content_type: str


@dataclass(frozen=True)
class BlobInfo:
    """One listed blob: enough for a sweeper to decide by age without a database row."""

    key: str
    size_bytes: int
    last_modified: datetime


class BlobStore(Protocol):
    async def put_file(self, key: str, path: Path, content_type: str) -> StoredBlob: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredBlob: ...

    async def url(self, key: str, *, expires_in: timedelta) -> str:
        """A URL anyone holding it can GET until it expires. Does not check that the key exists."""
        ...

    async def delete(self, key: str) -> None:
        """Idempotent: deleting a missing key is not an error."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int:
        """Size in bytes; raises `BlobNotFound`."""
        ...

    def list_prefix(self, prefix: str) -> AsyncIterator[BlobInfo]:
        """Every blob whose key starts with `prefix` (a plain string prefix, not a folder)."""
        ...


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative path, else raise `ValueError`.

    No empty segments, none starting with a dot (so no ``..``), no backslashes or control
    characters: a key can never name a file outside the local store's root or one of its
    temporary files, and means the same thing on every backend.
    """
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"blob key must be 1-{MAX_KEY_BYTES} bytes: {key!r}")
    if "\\" in key or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise ValueError(f"blob key has a backslash or control character: {key!r}")
    if any(segment == "" or segment.startswith(".") for segment in key.split("/")):
        raise ValueError(f"blob key has an empty segment or one starting with '.': {key!r}")
    return key


def expiry_seconds(expires_in: timedelta) -> int:
    """Whole seconds (rounded up, so a URL never dies early) of a positive lifetime."""
    seconds = math.ceil(expires_in.total_seconds())
    if seconds <= 0:
        raise ValueError(f"URL lifetime must be positive, got {expires_in}")
    return seconds
