"""Fixtures for job tests: media files served on a real loopback port, and an app that may fetch
from it (the SSRF allowlist names exactly that host)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from tests.conftest import Customer
from tests.engines.media import write_clip
from tests.servers import serving

TERMINAL = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class MediaHost:
    address: str
    folder: Path

    def url(self, name: str) -> str:
        return f"http://{self.address}/{name}"


@pytest.fixture(scope="session")
def media_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaHost]:
    folder = tmp_path_factory.mktemp("media")
    write_clip(folder / "red.mp4", frames=24, fps=24, color=(200, 40, 40))
    write_clip(folder / "blue.mp4", frames=24, fps=24, color=(40, 40, 200))
    write_clip(folder / "tone.mp4", frames=48, fps=24, width=96, height=64, tone_hz=440)
    (folder / "not-a-video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    (folder / "page.html").write_text("<html></html>")
    with serving(StaticFiles(directory=folder)) as address:
        yield MediaHost(address, folder)


@pytest.fixture
def settings(settings: Settings, media_host: MediaHost) -> Settings:
    return settings.model_copy(update={"fetch_allowed_hosts": [media_host.address]})


@pytest.fixture
def app(settings: Settings, db: Database) -> Starlette:
    return create_app(settings, database=db)


@pytest.fixture
async def idle_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose dispatcher never starts: submitted jobs stay queued."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://gateway.test"
    ) as http:
        yield http
    await app.state.jobs.fetcher.aclose()


async def wait_for_job(
    client: httpx.AsyncClient, customer: Customer, job_id: str, *, within: float = 90
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(
            "/api/v1/media/jobs",
            params={"jobId": job_id, "includeDetails": "true"},
            headers=customer.headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in TERMINAL:
            return body
        assert asyncio.get_running_loop().time() < deadline, f"job still {body['status']}: {body}"
        await asyncio.sleep(0.1)


async def balance(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/api/v1/balance", headers=customer.headers)).json()
    return body
