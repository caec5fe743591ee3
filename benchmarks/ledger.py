"""Holds + captures per second with 16 concurrent clients, then the ledger's invariant check.

    python -m benchmarks.ledger   # SQLite; PostgreSQL too when KILLA_TEST_POSTGRES_URL is set

Each client loops: hold (one writer transaction, as a submit's group commit takes it, here one
hold each), then capture part of it (another transaction), as a job does.
Two shapes: every client on its own account, and all 16 on one shared account (the hot row).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from rich.console import Console
from rich.table import Table

from backend.db.engine import Database
from backend.ledger.service import ledger
from benchmarks._databases import backends, database_for
from tests.conftest import make_customer
from tests.ledger.holds import take_hold
from tests.ledger.invariants import invariant_violations

CLIENTS = 16
HOLD = 25_000


async def run_shape(db: Database, *, shared: bool, cycles: int) -> float:
    funds = HOLD * cycles * CLIENTS
    if shared:
        owner = (await make_customer(db, usd_micros=funds)).account_id
        owners = [owner] * CLIENTS
    else:
        owners = [(await make_customer(db, usd_micros=funds)).account_id for _ in range(CLIENTS)]

    async def client(owner: str) -> None:
        for _ in range(cycles):
            hold = await take_hold(db, owner, HOLD, reference="bench", actor="bench")
            async with db.transaction() as session:
                await ledger.capture(session, hold.id, HOLD // 2, actor="bench")

    started = time.perf_counter()
    await asyncio.gather(*(client(owner) for owner in owners))
    return CLIENTS * cycles / (time.perf_counter() - started)


async def main(cycles: int) -> None:
    table = Table(title=f"Ledger: hold+capture cycles per second, {CLIENTS} concurrent clients")
    for column in ("database", "own accounts /s", "one shared account /s", "invariant violations"):
        table.add_column(column, justify="right")
    for kind in backends():
        async with database_for(kind) as url:
            db = Database(url)
            own = await run_shape(db, shared=False, cycles=cycles)
            shared = await run_shape(db, shared=True, cycles=cycles)
            async with db.transaction(write=False) as session:
                violations = len(await invariant_violations(session))
            await db.dispose()
        table.add_row(kind, f"{own:,.0f}", f"{shared:,.0f}", str(violations))
    Console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=60, help="hold+capture cycles per client")
    asyncio.run(main(parser.parse_args().cycles))
