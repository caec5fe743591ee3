"""The download endpoint behind `LocalBlobStore` URLs.

The signature is checked before anything else, so a request without a valid one learns nothing
(not even whether the key exists) and always gets the same 403. A valid signature past its expiry
is a 410: the link was real, its time is up.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

from backend.http.errors import Forbidden, Gone, NotFound
from backend.storage.blobs import BlobNotFound
from backend.storage.local import FILES_PATH, LocalBlobStore


def files_route(store: LocalBlobStore) -> Route:
    async def download(request: Request) -> FileResponse:
        key: str = request.path_params["key"]
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("signature", "")
        # Bounded length: int() of a huge digit string is slow, and past 4300 digits it raises.
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12) or not signature:
            raise Forbidden("This download link is missing its signature.")
        expires_at = int(expires)
        if not store.signature_valid(key, expires_at, signature):
            raise Forbidden("This download link's signature is not valid.")
        if expires_at < time.time():
            raise Gone("This download link has expired.")
        try:
            file = await store.local_file(key)
        except (ValueError, BlobNotFound):
            raise NotFound("This file no longer exists.") from None
        # FileResponse sets Content-Length and answers Range and HEAD requests itself.
        return FileResponse(file.path, media_type=file.content_type)

    return Route(f"{FILES_PATH}/{{key:path}}", download, methods=["GET", "HEAD"])
