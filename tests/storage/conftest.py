"""A real HTTP server on 127.0.0.1 (uvicorn in a thread) for the fetcher and URL staging, and
small media factories."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator, Iterator

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from backend.storage.fetch import SafeFetcher
from tests.servers import serving


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, ...] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


async def _image(request: Request) -> Response:
    return Response(png_bytes(), media_type="image/png")


async def _octet_audio(request: Request) -> Response:
    return Response(wav_bytes(), media_type="binary/octet-stream")


async def _big(request: Request) -> Response:
    return Response(b"\x00" * 5000, media_type="image/png")


async def _big_chunked(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"\x00" * 500

    # No Content-Length: only counting while streaming can catch it.
    return StreamingResponse(body(), media_type="image/png")


async def _html(request: Request) -> Response:
    return Response(b"<html></html>", media_type="text/html; charset=utf-8")


async def _host(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.headers["host"])


async def _redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def _hops(request: Request) -> Response:
    left = int(request.path_params["n"])
    if left == 0:
        return await _image(request)
    return RedirectResponse(f"/hops/{left - 1}", status_code=307)


async def _status(request: Request) -> Response:
    return Response(b"nope", status_code=int(request.path_params["code"]), media_type="image/png")


async def _slow(request: Request) -> Response:
    await asyncio.sleep(2)
    return await _image(request)


async def _trickle(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"\x00"
            await asyncio.sleep(0.05)

    return StreamingResponse(body(), media_type="image/png")


APP = Starlette(
    routes=[
        Route("/image.png", _image),
        Route("/audio", _octet_audio),
        Route("/big", _big),
        Route("/big-chunked", _big_chunked),
        Route("/html", _html),
        Route("/host", _host),
        Route("/redirect", _redirect),
        Route("/hops/{n:int}", _hops),
        Route("/status/{code:int}", _status),
        Route("/slow", _slow),
        Route("/trickle", _trickle),
    ]
)


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    with serving(APP) as address:
        yield address


@pytest.fixture
async def fetcher(http_server: str) -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(
        allowed_hosts={http_server}, read_timeout=0.5, total_timeout=1.5
    ) as safe_fetcher:
        yield safe_fetcher
