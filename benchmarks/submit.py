"""Job submits per second (validation + pricing + hold + enqueue) vs a bare Starlette route.

    python -m benchmarks.submit   # SQLite; PostgreSQL too when KILLA_TEST_POSTGRES_URL is set

Both run in this process behind the same in-process HTTP client (httpx.ASGITransport) with the
same concurrency, so the ratio isolates what the gateway adds: auth, validation, input
adjustments, pricing, the estimate, the ledger hold and the job row. The dispatcher is not
started, so submitted jobs stay queued (enqueue is the row insert the dispatcher later claims).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from benchmarks._databases import backends, database_for
from tests.conftest import make_customer

CONCURRENCY = 16
BODY = {"task": "audio.speak", "input": {"text": "Benchmarks keep us honest about overhead."}}


async def bare_route(request: Request) -> JSONResponse:
    payload = await request.json()
    return JSONResponse({"ok": True, "task": payload["task"]}, status_code=201)


async def throughput(send: Callable[[], Awaitable[httpx.Response]], total: int) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await send()
            assert response.status_code == 201, response.text

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return total / (time.perf_counter() - started)


async def measure(kind: str, total: int) -> tuple[float, float]:
    bare = Starlette(routes=[Route("/bare", bare_route, methods=["POST"])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bare), base_url="http://bench"
    ) as client:
        bare_rate = await throughput(lambda: client.post("/bare", json=BODY), total)

    async with database_for(kind) as url:
        db = Database(url)
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                data_dir=Path(folder),
                database_url=url,
                rate_limit_per_minute=10**9,
                rate_limit_burst=10**9,
            )
            app = create_app(settings, database=db)
            customer = await make_customer(db, usd_micros=10**12)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                submit_rate = await throughput(
                    lambda: client.post("/api/v1/media/jobs", json=BODY, headers=customer.headers),
                    total,
                )
            await app.state.jobs.fetcher.aclose()
        await db.dispose()
    return bare_rate, submit_rate


async def main(total: int) -> None:
    table = Table(
        title=f"POST /api/v1/media/jobs vs a bare Starlette route, {CONCURRENCY} concurrent"
    )
    for column in ("database", "bare route /s", "submit /s", "ratio"):
        table.add_column(column, justify="right")
    for kind in backends():
        bare_rate, submit_rate = await measure(kind, total)
        table.add_row(
            kind, f"{bare_rate:,.0f}", f"{submit_rate:,.0f}", f"{submit_rate / bare_rate:.1%}"
        )
    Console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    asyncio.run(main(parser.parse_args().requests))
