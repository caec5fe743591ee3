from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from backend.http.errors import GatewayError
from backend.storage.blobs import BlobNotFound
from backend.storage.files_route import files_route
from backend.storage.local import LocalBlobStore

BASE_URL = "http://testserver"
SECRET = b"s" * 32
HOUR = timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store", BASE_URL, SECRET)


@pytest.fixture
async def client(store: LocalBlobStore) -> AsyncIterator[httpx.AsyncClient]:
    # Stands in for the gateway's handler, which renders every GatewayError the same way.
    async def render(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        return JSONResponse(exc.to_body(None), status_code=exc.status, headers=exc.headers)

    app = Starlette(routes=[files_route(store)], exception_handlers={GatewayError: render})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_signed_url_round_trip(store: LocalBlobStore, client: httpx.AsyncClient) -> None:
    stored = await store.put_bytes("outputs/job-1/0.webp", b"RIFFdata", "image/webp")
    assert (stored.key, stored.size_bytes, stored.content_type) == (
        "outputs/job-1/0.webp",
        8,
        "image/webp",
    )
    url = await store.url("outputs/job-1/0.webp", expires_in=HOUR)
    assert url.startswith(f"{BASE_URL}/files/outputs/job-1/0.webp?expires=")

    response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFFdata"
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["content-length"] == "8"


async def test_keys_needing_percent_encoding_round_trip(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    key = "outputs/job 2/ñandú #1.mp3"
    await store.put_bytes(key, b"ID3...", "audio/mpeg")
    response = await client.get(await store.url(key, expires_in=HOUR))
    assert response.status_code == 200
    assert response.content == b"ID3..."


async def test_put_file_range_and_head(
    store: LocalBlobStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(bytes(range(256)) * 4)
    stored = await store.put_file("outputs/job-3/clip.mp4", source, "video/mp4")
    assert stored.size_bytes == 1024
    url = await store.url(stored.key, expires_in=HOUR)

    partial = await client.get(url, headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.content == bytes(range(10, 20))

    head = await client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == "1024"
    assert head.content == b""


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("signature=", "signature=0"),
        lambda url: url[:-1] + ("0" if url[-1] != "0" else "1"),
        lambda url: url.replace("expires=", "expires=9"),
        lambda url: url.replace("/0.webp", "/1.webp"),
        lambda url: url.partition("?")[0],
        lambda url: url.replace("expires=", "expires=-"),
    ],
    ids=["signature", "signature-digit", "expiry", "other-key", "unsigned", "negative-expiry"],
)
async def test_tampered_url_is_forbidden(
    store: LocalBlobStore, client: httpx.AsyncClient, tamper: Callable[[str], str]
) -> None:
    await store.put_bytes("outputs/job-4/0.webp", b"a", "image/webp")
    await store.put_bytes("outputs/job-4/1.webp", b"b", "image/webp")
    url = await store.url("outputs/job-4/0.webp", expires_in=HOUR)
    response = await client.get(tamper(url))
    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"


async def test_url_signed_with_another_secret_is_forbidden(
    store: LocalBlobStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await store.put_bytes("k.txt", b"x", "text/plain")
    other = LocalBlobStore(tmp_path / "store", BASE_URL, b"t" * 32)
    response = await client.get(await other.url("k.txt", expires_in=HOUR))
    assert response.status_code == 403


async def test_expired_url_is_gone(store: LocalBlobStore, client: httpx.AsyncClient) -> None:
    await store.put_bytes("outputs/job-5/0.webp", b"a", "image/webp")
    expired_at = int(time.time()) - 1
    signature = store.sign("outputs/job-5/0.webp", expired_at)
    response = await client.get(
        f"/files/outputs/job-5/0.webp?expires={expired_at}&signature={signature}"
    )
    assert response.status_code == 410
    assert error_code(response) == "GONE"


async def test_path_traversal_is_refused(
    store: LocalBlobStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    await store.put_bytes("outputs/ok.txt", b"ok", "text/plain")
    expires = int(time.time()) + 60
    # httpx would normalise a literal '..'; percent-encoded dots reach the route as '..'.
    key = "%2e%2e/%2e%2e/secret.txt"
    unsigned = await client.get(f"/files/{key}?expires={expires}&signature=00")
    assert unsigned.status_code == 403

    # Even with a valid signature for that key, the store will not leave its root.
    signature = store.sign("../../secret.txt", expires)
    signed = await client.get(f"/files/{key}?expires={expires}&signature={signature}")
    # Our 404 (the route matched and the signature held), not a routing miss.
    assert signed.status_code == 404
    assert error_code(signed) == "NOT_FOUND"


async def test_symlink_out_of_the_root_is_not_served(
    store: LocalBlobStore, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    await store.put_bytes("outputs/ok.txt", b"ok", "text/plain")
    (tmp_path / "store" / "blobs" / "outputs" / "link.txt").symlink_to(tmp_path / "secret.txt")
    response = await client.get(await store.url("outputs/link.txt", expires_in=HOUR))
    assert response.status_code == 404


async def test_valid_url_for_a_deleted_blob_is_not_found(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    await store.put_bytes("outputs/job-6/0.webp", b"a", "image/webp")
    url = await store.url("outputs/job-6/0.webp", expires_in=HOUR)
    await store.delete("outputs/job-6/0.webp")
    response = await client.get(url)
    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


async def test_exists_size_list_delete(store: LocalBlobStore, tmp_path: Path) -> None:
    await store.put_bytes("outputs/a/0.png", b"12345", "image/png")
    await store.put_bytes("outputs/a/1.png", b"1", "image/png")
    await store.put_bytes("outputs/ab/0.png", b"12", "image/png")
    await store.put_bytes("inputs/a/0.png", b"1", "image/png")

    assert await store.exists("outputs/a/0.png")
    assert await store.size("outputs/a/0.png") == 5
    listed = [info async for info in store.list_prefix("outputs/a")]
    assert [(i.key, i.size_bytes) for i in listed] == [
        ("outputs/a/0.png", 5),
        ("outputs/a/1.png", 1),
        ("outputs/ab/0.png", 2),
    ]
    assert [i.key async for i in store.list_prefix("outputs/a/")] == [
        "outputs/a/0.png",
        "outputs/a/1.png",
    ]
    assert all(i.last_modified.tzinfo is not None for i in listed)

    await store.delete("outputs/a/0.png")
    await store.delete("outputs/a/1.png")
    await store.delete("outputs/a/1.png")  # idempotent
    assert not await store.exists("outputs/a/0.png")
    with pytest.raises(BlobNotFound):
        await store.size("outputs/a/0.png")
    # The job's emptied folders go too, the store's own do not.
    assert not (tmp_path / "store" / "blobs" / "outputs" / "a").exists()
    assert (tmp_path / "store" / "blobs" / "outputs" / "ab").is_dir()
    assert [i.key async for i in store.list_prefix("")] == ["inputs/a/0.png", "outputs/ab/0.png"]


async def test_overwrite_replaces_bytes_and_type(store: LocalBlobStore) -> None:
    await store.put_bytes("k", b"old", "text/plain")
    await store.put_bytes("k", b"newer", "application/json")
    assert await store.size("k") == 5
    assert (await store.local_file("k")).content_type == "application/json"


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "a//b", "a/.hidden", "a\\b", ""])
async def test_unsafe_keys_are_refused(store: LocalBlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="blob key"):
        await store.put_bytes(key, b"x", "text/plain")
    with pytest.raises(ValueError, match="blob key"):
        await store.url(key, expires_in=HOUR)


async def test_url_lifetime_must_be_positive(store: LocalBlobStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        await store.url("k", expires_in=timedelta(0))


def test_short_signing_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LocalBlobStore(tmp_path, BASE_URL, b"short")
