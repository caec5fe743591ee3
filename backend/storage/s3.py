"""A blob store on any S3-compatible service (AWS S3, MinIO, R2, ...), with presigned GET URLs.

Open it once for the app's lifetime (``async with S3BlobStore(...) as store``): the client and its
connection pool are built on entry, not per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError

from backend.closeable import AsyncCloseable
from backend.storage.blobs import BlobInfo, BlobNotFound, StoredBlob, expiry_seconds, validate_key

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's ceiling for a presigned URL

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3BlobStore(AsyncCloseable):
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
    ) -> None:
        self._bucket = bucket
        self._prefix = f"{validate_key(prefix.strip('/'))}/" if prefix.strip("/") else ""
        # No keys given: boto's own chain (environment, instance profile, ...) supplies them.
        self._session = aioboto3.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._endpoint_url = endpoint_url
        # SigV4 and path-style: with a custom endpoint boto would otherwise presign with SigV2
        # and address `bucket.localhost`. Checksums only when required, because several
        # S3-compatible servers reject the CRC32 headers new botocore sends by default.
        self._config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(
            self._session.client("s3", endpoint_url=self._endpoint_url, config=self._config)
        )
        self._stack = stack
        return self

    async def aclose(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    async def put_file(self, key: str, path: Path, content_type: str) -> StoredBlob:
        # upload_file switches to a multipart upload for large files (videos).
        await self._s3.upload_file(
            str(path), self._bucket, self._object_key(key), ExtraArgs={"ContentType": content_type}
        )
        stat = await asyncio.to_thread(path.stat)
        return StoredBlob(key=key, size_bytes=stat.st_size, content_type=content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredBlob:
        await self._s3.put_object(
            Bucket=self._bucket, Key=self._object_key(key), Body=data, ContentType=content_type
        )
        return StoredBlob(key=key, size_bytes=len(data), content_type=content_type)

    async def url(self, key: str, *, expires_in: timedelta) -> str:
        seconds = expiry_seconds(expires_in)
        if seconds > MAX_PRESIGN_SECONDS:
            raise ValueError(f"S3 presigned URLs live at most 7 days, asked for {expires_in}")
        url: str = await self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": self._object_key(key)},
            ExpiresIn=seconds,
        )
        return url

    async def delete(self, key: str) -> None:
        await self._s3.delete_object(Bucket=self._bucket, Key=self._object_key(key))

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except BlobNotFound:
            return False
        return True

    async def size(self, key: str) -> int:
        try:
            head = await self._s3.head_object(Bucket=self._bucket, Key=self._object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES:
                raise BlobNotFound(key) from None
            raise
        size: int = head["ContentLength"]
        return size

    async def list_prefix(self, prefix: str) -> AsyncIterator[BlobInfo]:
        paginator = self._s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix)
        async for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"].removeprefix(self._prefix)
                yield BlobInfo(key=key, size_bytes=obj["Size"], last_modified=obj["LastModified"])

    @property
    def _s3(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3BlobStore is not open: use `async with S3BlobStore(...)`")
        return self._client

    def _object_key(self, key: str) -> str:
        return self._prefix + validate_key(key)
