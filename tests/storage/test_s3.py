"""S3BlobStore against a real (moto) S3 endpoint on 127.0.0.1.

moto checks neither presigned signatures nor expiry: signing is asserted on the URL's form here,
and expiry is tested through the local store's own route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from backend.storage.blobs import BlobNotFound
from backend.storage.s3 import S3BlobStore
from tests.conftest import S3_CREDENTIALS as CREDENTIALS


@pytest.fixture
async def store(s3_endpoint: str, s3_bucket: str) -> AsyncIterator[S3BlobStore]:
    async with S3BlobStore(
        s3_bucket, endpoint_url=s3_endpoint, prefix="killa/", **CREDENTIALS
    ) as s3:
        yield s3


async def test_put_presign_fetch_delete(store: S3BlobStore) -> None:
    stored = await store.put_bytes("outputs/job-1/0.webp", b"RIFF-webp-bytes", "image/webp")
    assert stored.size_bytes == 15
    assert await store.exists("outputs/job-1/0.webp")
    assert await store.size("outputs/job-1/0.webp") == 15

    url = await store.url("outputs/job-1/0.webp", expires_in=timedelta(hours=72))
    # SigV4, path-style, under the configured prefix.
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "X-Amz-Expires=259200" in url
    assert "/killa/outputs/job-1/0.webp?" in url
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFF-webp-bytes"
    assert response.headers["content-type"] == "image/webp"

    await store.delete("outputs/job-1/0.webp")
    await store.delete("outputs/job-1/0.webp")  # idempotent
    assert not await store.exists("outputs/job-1/0.webp")
    with pytest.raises(BlobNotFound):
        await store.size("outputs/job-1/0.webp")


async def test_put_file_and_list_by_prefix(store: S3BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00" * 2048)
    stored = await store.put_file("outputs/job-2/clip.mp4", source, "video/mp4")
    assert stored.size_bytes == 2048
    await store.put_bytes("outputs/job-2/poster.webp", b"x", "image/webp")
    await store.put_bytes("outputs/job-20/0.webp", b"yy", "image/webp")

    listed = [info async for info in store.list_prefix("outputs/job-2/")]
    assert [(i.key, i.size_bytes) for i in listed] == [
        ("outputs/job-2/clip.mp4", 2048),
        ("outputs/job-2/poster.webp", 1),
    ]
    assert all(i.last_modified.tzinfo is not None for i in listed)
    assert len([i async for i in store.list_prefix("outputs/job-2")]) == 3


async def test_presigned_url_lifetime_is_capped_at_seven_days(store: S3BlobStore) -> None:
    with pytest.raises(ValueError, match="7 days"):
        await store.url("k", expires_in=timedelta(days=8))


async def test_unsafe_keys_are_refused(store: S3BlobStore) -> None:
    with pytest.raises(ValueError, match="blob key"):
        await store.put_bytes("../escape", b"x", "text/plain")


async def test_store_must_be_opened(s3_endpoint: str, s3_bucket: str) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await S3BlobStore(s3_bucket, endpoint_url=s3_endpoint, **CREDENTIALS).exists("k")
