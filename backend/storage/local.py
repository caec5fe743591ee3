"""A blob store on the local disk, for the embedded single-machine setup.

Layout under `root`: ``blobs/<key>`` holds the bytes, ``types/<key>`` the content type as text
(two trees rather than sidecar files, so no key can collide with another key's metadata).
Writes go to a temporary file and are renamed into place, so a reader never sees half a file.

Download URLs point at `files_route` (``<public_base_url>/files/<key>?expires=…&signature=…``);
the signature is HMAC-SHA256 over the key and the expiry, so a URL cannot be re-pointed at another
key or extended.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from backend.storage.blobs import BlobInfo, BlobNotFound, StoredBlob, expiry_seconds, validate_key

FILES_PATH = "/files"
_DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class LocalFile:
    path: Path
    content_type: str


class LocalBlobStore:
    def __init__(self, root: Path, public_base_url: str, signing_secret: bytes) -> None:
        if len(signing_secret) < 32:
            # Shorter HMAC keys are brute-forceable offline from any one leaked URL.
            raise ValueError("signing_secret must be at least 32 bytes")
        self._root = root.resolve()
        self._blobs = self._root / "blobs"
        self._types = self._root / "types"
        self._base_url = public_base_url.rstrip("/")
        self._secret = signing_secret

    async def put_file(self, key: str, path: Path, content_type: str) -> StoredBlob:
        def copy(dest: IO[bytes]) -> None:
            with path.open("rb") as src:
                shutil.copyfileobj(src, dest)

        return await asyncio.to_thread(self._put, key, copy, content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredBlob:
        return await asyncio.to_thread(self._put, key, lambda dest: dest.write(data), content_type)

    async def url(self, key: str, *, expires_in: timedelta) -> str:
        validate_key(key)
        expires_at = int(time.time()) + expiry_seconds(expires_in)
        query = urlencode({"expires": expires_at, "signature": self.sign(key, expires_at)})
        return f"{self._base_url}{FILES_PATH}/{quote(key, safe='/')}?{query}"

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, validate_key(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._blob_path(key).is_file)

    async def size(self, key: str) -> int:
        try:
            stat = await asyncio.to_thread(self._blob_path(key).stat)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return stat.st_size

    async def list_prefix(self, prefix: str) -> AsyncIterator[BlobInfo]:
        for info in await asyncio.to_thread(self._list, prefix):
            yield info

    def sign(self, key: str, expires_at: int) -> str:
        # Keys have no control characters, so the newline separator is unambiguous.
        message = f"{key}\n{expires_at}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signature_valid(self, key: str, expires_at: int, signature: str) -> bool:
        return hmac.compare_digest(self.sign(key, expires_at), signature)

    async def local_file(self, key: str) -> LocalFile:
        """The file to serve for `key`; raises `ValueError` for a bad key, `BlobNotFound`."""
        path = self._blob_path(key)
        return await asyncio.to_thread(self._local_file, key, path)

    def _local_file(self, key: str, path: Path) -> LocalFile:
        # validate_key already rules out '..'; resolving also catches a symlink planted under
        # root that points outside it, because this is the one path that serves files publicly.
        if not path.resolve().is_relative_to(self._blobs) or not path.is_file():
            raise BlobNotFound(key)
        try:
            content_type = (self._types / key).read_text().strip()
        except FileNotFoundError:
            content_type = _DEFAULT_CONTENT_TYPE
        return LocalFile(path=path, content_type=content_type)

    def _blob_path(self, key: str) -> Path:
        return self._blobs / validate_key(key)

    def _put(self, key: str, write: Callable[[IO[bytes]], object], content_type: str) -> StoredBlob:
        path = self._blob_path(key)
        _atomic_write(self._types / key, lambda dest: dest.write(content_type.encode()))
        _atomic_write(path, write)
        return StoredBlob(key=key, size_bytes=path.stat().st_size, content_type=content_type)

    def _delete(self, key: str) -> None:
        for tree in (self._blobs, self._types):
            path = tree / key
            path.unlink(missing_ok=True)
            _prune_empty_dirs(path.parent, stop=tree)

    def _list(self, prefix: str) -> list[BlobInfo]:
        # Walk only the deepest folder the prefix names, not the whole store.
        folder = prefix.rpartition("/")[0]
        start = self._blobs / validate_key(folder) if folder else self._blobs
        found: list[BlobInfo] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            for name in filenames:
                path = Path(dirpath) / name
                key = path.relative_to(self._blobs).as_posix()
                # Temporary files of writes in progress are dot-files; valid keys never are.
                if key.startswith(prefix) and not name.startswith("."):
                    stat = path.stat()
                    modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
                    found.append(BlobInfo(key, stat.st_size, modified))
        return sorted(found, key=lambda info: info.key)


def _atomic_write(dest: Path, write: Callable[[IO[bytes]], object]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".tmp-", delete=False) as tmp:
        try:
            write(tmp)
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, dest)


def _prune_empty_dirs(folder: Path, *, stop: Path) -> None:
    # One folder per job would otherwise pile up forever. Safe against a concurrent put into the
    # same folder only because keys are per job and a job's outputs are deleted long after it ends.
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): nothing above it can be empty either
            return
        folder = folder.parent
