"""The PostgreSQL writer runs each write transaction on a blocking connection in a thread: the event
loop must keep running meanwhile, and a transaction must land whole or not at all (PostgreSQL
only: SQLite's writer is tests/db/test_sqlite_writer.py)."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db.engine import Database
from backend.db.postgres_writer import WRITER_CONNECTIONS
from backend.ledger.service import IdempotentResponse, ledger
from tests.conftest import POSTGRES, POSTGRES_URL, make_customer
from tests.db.idempotency_records import stored_keys
from tests.db.loop_ticks import loop_ticks


@pytest.fixture(params=[POSTGRES])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def remember(connection: Connection, owner_id: str, key: str) -> None:
    ledger.remember_many(
        connection, [IdempotentResponse(owner_id, "test", key, "f", 201, {"key": key})]
    )


def wait_on_server(connection: Connection, seconds: float) -> None:
    connection.exec_driver_sql(f"SELECT pg_sleep({seconds})")


async def test_waiting_on_the_server_keeps_the_event_loop_running(db: Database) -> None:
    async with loop_ticks() as ticks:
        await db.run_in_writer(lambda connection: wait_on_server(connection, 0.5))
    assert ticks.count >= 20  # about 100 if the loop never waited on the writer


async def test_more_writers_than_connections_all_commit(db: Database) -> None:
    owner = (await make_customer(db)).account_id

    def write(connection: Connection, key: str) -> str:
        wait_on_server(connection, 0.05)
        remember(connection, owner, key)
        return key

    keys = [f"k{i}" for i in range(WRITER_CONNECTIONS * 3)]
    written = await asyncio.gather(*(db.run_in_writer(partial(write, key=key)) for key in keys))
    assert written == keys
    assert await stored_keys(db) == set(keys)


async def test_a_writer_that_raises_leaves_nothing_behind(db: Database) -> None:
    owner = (await make_customer(db)).account_id

    def write_then_fail(connection: Connection) -> None:
        remember(connection, owner, "first")
        raise ValueError("refused after the first write")

    with pytest.raises(ValueError, match="refused after the first write"):
        await db.run_in_writer(write_then_fail)
    assert await stored_keys(db) == set()
    await db.run_in_writer(lambda connection: remember(connection, owner, "next"))
    assert await stored_keys(db) == {"next"}


async def test_a_transaction_whose_caller_is_cancelled_still_commits_whole(db: Database) -> None:
    owner = (await make_customer(db)).account_id

    def two_writes(connection: Connection) -> None:
        remember(connection, owner, "before")
        wait_on_server(connection, 0.3)
        remember(connection, owner, "after")

    caller = asyncio.create_task(db.run_in_writer(two_writes))
    await asyncio.sleep(0.1)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(100):
        if await stored_keys(db):
            break
        await asyncio.sleep(0.05)
    assert await stored_keys(db) == {"before", "after"}


async def test_dispose_closes_the_writer_connections(database_url: str) -> None:
    db = Database(database_url)
    owner = (await make_customer(db)).account_id
    await asyncio.gather(
        *(
            db.run_in_writer(partial(remember, owner_id=owner, key=f"k{i}"))
            for i in range(WRITER_CONNECTIONS)
        )
    )
    await db.dispose()
    assert POSTGRES_URL is not None
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        open_connections = await connection.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
            {"name": make_url(database_url).database},
        )
    await admin.dispose()
    assert open_connections == 0
