"""50 concurrent holds race for a balance that fits exactly k of them: exactly k win."""

from __future__ import annotations

import asyncio

import pytest

from backend.db.engine import Database
from backend.ledger.service import InsufficientFunds, ledger
from tests.conftest import make_customer
from tests.ledger.holds import take_hold
from tests.ledger.invariants import invariant_violations

HOLD = 70_000
RACERS = 50


async def _race(databases: list[Database], account_id: str) -> list[bool]:
    async def one(index: int) -> bool:
        db = databases[index % len(databases)]
        try:
            await take_hold(db, account_id, HOLD, reference=f"race:{index}", actor="race")
        except InsufficientFunds:
            return False
        return True

    return await asyncio.gather(*(one(i) for i in range(RACERS)))


@pytest.mark.parametrize("fits", [1, 17, 49])
async def test_exactly_k_of_50_concurrent_holds_succeed(db: Database, fits: int) -> None:
    customer = await make_customer(db, usd_micros=HOLD * fits + HOLD - 1)
    outcomes = await _race([db], customer.account_id)
    assert sum(outcomes) == fits
    async with db.transaction(write=False) as session:
        balance = await ledger.balance(session, customer.account_id)
        assert balance.available_micros == HOLD - 1
        assert await invariant_violations(session) == []


async def test_holds_from_separate_engines_still_never_overdraw(
    db: Database, database_url: str
) -> None:
    """Separate engines share no in-process lock: only the database itself can keep this right
    (SQLite's BEGIN IMMEDIATE, retried while another writer holds it; PostgreSQL's row locks,
    taken before the funds are read)."""
    customer = await make_customer(db, usd_micros=HOLD * 10)
    engines = [Database(database_url) for _ in range(5)]
    try:
        outcomes = await _race(engines, customer.account_id)
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))
    assert sum(outcomes) == 10
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, customer.account_id)).available_micros == 0
        assert await invariant_violations(session) == []


async def test_concurrent_holds_and_captures_on_one_account_do_not_deadlock(db: Database) -> None:
    """Holds lock available→held; captures must take the same order or PostgreSQL deadlocks."""
    customer = await make_customer(db, usd_micros=HOLD * 200)

    async def cycle() -> None:
        for _ in range(5):
            hold = await take_hold(db, customer.account_id, HOLD, reference="mix")
            async with db.transaction() as session:
                await ledger.capture(session, hold.id, HOLD // 2, actor="t")

    await asyncio.gather(*(cycle() for _ in range(16)))
    async with db.transaction(write=False) as session:
        balance = await ledger.balance(session, customer.account_id)
        assert balance.balance_micros == HOLD * 200 - 16 * 5 * (HOLD // 2)
        assert await invariant_violations(session) == []
