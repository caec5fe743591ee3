"""Jobs on real worker processes, and a real `killa serve` killed mid-job: nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from tests.conftest import Customer
from tests.engines.media import write_clip
from tests.jobs.conftest import MediaHost, wait_for_job
from tests.ledger.invariants import invariant_violations

KILLA = str(Path(sys.executable).with_name("killa"))


async def test_jobs_run_in_worker_processes(
    settings: Settings, db: Database, customer: Customer, media_host: MediaHost
) -> None:
    app: Starlette = create_app(settings.model_copy(update={"worker_mode": "process"}), database=db)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://gateway.test"
        ) as client,
    ):
        body = {
            "task": "video.combine",
            "input": {
                "videoUrls": [media_host.url("red.mp4"), media_host.url("blue.mp4")],
                "frameRate": 24,
            },
        }
        job = (await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)).json()
        done = await wait_for_job(client, customer, job["externalJobId"], within=120)
    assert done["status"] == "succeeded", done
    assert done["outputFiles"][0]["properties"]["frames"] == 47


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`killa serve` in its own process group, so a kill takes its worker processes too."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, **extra_env: str) -> None:
        self.process = subprocess.Popen(
            [KILLA, "serve", "--port", str(self.port)],
            env={**self.env, **extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.base}/api/v1/health", timeout=1)
                return
            except httpx.TransportError:
                assert self.process.poll() is None, "killa serve exited"
                assert time.monotonic() < deadline, "killa serve did not start"
                time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [KILLA, *args], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


async def status_of(client: httpx.AsyncClient, key: str, job_id: str) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/media/jobs", params={"jobId": job_id}, headers={"Authorization": f"Bearer {key}"}
    )
    body: dict[str, Any] = response.json()
    return body


async def wait_until_running(client: httpx.AsyncClient, key: str, job_id: str) -> None:
    for _ in range(600):
        status = await status_of(client, key, job_id)
        if status["status"] == "running" and status["progress"]["percent"] > 0:
            return
        assert status["status"] in ("queued", "running"), status
        await asyncio.sleep(0.05)
    raise AssertionError("the job never started running")


async def wait_terminal(client: httpx.AsyncClient, key: str, job_id: str) -> dict[str, Any]:
    for _ in range(1200):
        status = await status_of(client, key, job_id)
        if status["status"] in ("succeeded", "failed", "canceled"):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError("the job never finished")


@pytest.mark.slow
async def test_killing_killa_serve_mid_job_loses_no_job_and_no_money(
    tmp_path: Path, media_host: MediaHost
) -> None:
    long_clip = media_host.folder / "long.mp4"
    if not long_clip.exists():
        write_clip(long_clip, frames=720, fps=24, width=320, height=240)
    env = {
        **os.environ,
        "KILLA_DATA_DIR": str(tmp_path / "data"),
        "KILLA_FETCH_ALLOWED_HOSTS": f'["{media_host.address}"]',
    }
    for name in ("KILLA_DATABASE_URL", "KILLA_PUBLIC_BASE_URL"):
        env.pop(name, None)
    key = cli(env, "accounts", "create", "--email", "crash@example.com")
    cli(
        env,
        "credits",
        "grant",
        "--email",
        "crash@example.com",
        "--usd",
        "5",
        "--reason",
        "crash test",
    )
    body = {"task": "video.combine", "input": {"videoUrls": [media_host.url("long.mp4")] * 3}}
    server = Server(env)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            headers = {"Authorization": f"Bearer {key}"}
            # 1. One attempt allowed: a job interrupted by the kill is failed and its hold released.
            server.start(KILLA_JOB_MAX_ATTEMPTS="1")
            client.base_url = httpx.URL(server.base)
            doomed = (await client.post("/api/v1/media/jobs", json=body, headers=headers)).json()[
                "externalJobId"
            ]
            await wait_until_running(client, key, doomed)
            server.kill()
            server.start(KILLA_JOB_MAX_ATTEMPTS="1")
            failed = await wait_terminal(client, key, doomed)
            assert failed["status"] == "failed"
            assert failed["error"]["code"] == "WORKER_LOST"
            assert failed["billing"]["usdChargedMicros"] == 0

            # 2. Default attempts: the interrupted job runs again after the restart and succeeds.
            retried = (await client.post("/api/v1/media/jobs", json=body, headers=headers)).json()
            await wait_until_running(client, key, retried["externalJobId"])
            server.kill()
            server.start()
            done = await wait_terminal(client, key, retried["externalJobId"])
            assert done["status"] == "succeeded", done
            assert done["attempts"] == 2
            assert (await client.get(done["downloadableOutputUrls"][0])).status_code == 200

            balance = (await client.get("/api/v1/balance", headers=headers)).json()
            assert balance["usdHeldMicros"] == 0
            assert balance["usdBalanceMicros"] == 5_000_000 - retried["usdChargedMicros"]
    finally:
        server.stop()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'killa.db'}")
    async with db.transaction(write=False) as session:
        assert await invariant_violations(session) == []
    await db.dispose()
