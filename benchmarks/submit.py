"""Job submits per second (validation + pricing + hold + enqueue) vs a bare Starlette route.

    python -m benchmarks.submit   # SQLite; PostgreSQL too when KILLA_TEST_POSTGRES_URL is set

Both run in this process behind the same in-process HTTP client (httpx.ASGITransport) and the
same 16 client tasks, so the ratio isolates what the gateway adds: auth, validation, input
adjustments, pricing, the estimate, the ledger hold and the job row. Nothing in this transport
waits on a socket, so the bare route's tasks in fact take turns one whole request at a time,
while 16 submits are in flight together (each waits for its group commit). The dispatcher is not
started, so submitted jobs stay queued (enqueue is the row insert the dispatcher later claims).
Logging is not configured, so neither side writes access logs (`killa serve` writes one JSON line
per request at INFO).

The two alternate for several rounds and the medians are printed, so a busy moment on the
machine weighs on both; afterwards the run checks its own work (every submit left one queued job
and moved exactly its price).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.app import create_app
from backend.db.engine import Database
from backend.jobs.models import MediaJob
from backend.ledger.service import ledger
from backend.settings import Settings
from benchmarks._databases import backends, database_for
from tests.conftest import make_customer

CONCURRENCY = 16
ROUNDS = 5
WARMUP = 200
FUNDS = 10**12
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


async def measure(kind: str, total: int, rounds: int) -> list[tuple[float, float]]:
    """(bare route /s, submit /s) per round."""
    bare = Starlette(routes=[Route("/bare", bare_route, methods=["POST"])])
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
            customer = await make_customer(db, usd_micros=FUNDS)
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=bare), base_url="http://bench"
                ) as bare_client,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench"
                ) as client,
            ):
                # Byte for byte the same request, so only the server's work differs.
                def send_bare() -> Awaitable[httpx.Response]:
                    return bare_client.post("/bare", json=BODY, headers=customer.headers)

                def submit() -> Awaitable[httpx.Response]:
                    return client.post("/api/v1/media/jobs", json=BODY, headers=customer.headers)

                price = (await submit()).json()["usdChargedMicros"]
                await throughput(send_bare, WARMUP)
                await throughput(submit, WARMUP)
                rates = [
                    (await throughput(send_bare, total), await throughput(submit, total))
                    for _ in range(rounds)
                ]
            await check_the_work(db, customer.account_id, 1 + WARMUP + rounds * total, price)
            await app.state.jobs.fetcher.aclose()
        await db.dispose()
    return rates


async def check_the_work(db: Database, account_id: str, submits: int, price: int) -> None:
    async with db.transaction(write=False) as session:
        jobs = await session.scalar(
            select(func.count()).select_from(MediaJob).where(MediaJob.owner_id == account_id)
        )
        balance = await ledger.balance(session, account_id)
    assert jobs == submits, f"{submits} submits left {jobs} jobs"
    assert balance.held_micros == submits * price, "the holds do not add up"
    assert balance.available_micros == FUNDS - submits * price


async def main(total: int, rounds: int) -> None:
    table = Table(
        title=f"POST /api/v1/media/jobs vs a bare Starlette route, {CONCURRENCY} concurrent, "
        f"median of {rounds} alternating rounds of {total:,} requests"
    )
    for column in ("database", "bare route /s", "submit /s", "ratio", "ratio range"):
        table.add_column(column, justify="right")
    for kind in backends():
        rates = await measure(kind, total, rounds)
        ratios = [submit / bare for bare, submit in rates]
        table.add_row(
            kind,
            f"{statistics.median(bare for bare, _ in rates):,.0f}",
            f"{statistics.median(submit for _, submit in rates):,.0f}",
            f"{statistics.median(ratios):.1%}",
            f"{min(ratios):.1%} to {max(ratios):.1%}",
        )
    Console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternating rounds")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
