"""The SQLite writer runs on the event loop, so it must never block it: another process's write
lock is waited for with asyncio sleeps, and the WAL is checkpointed from a thread of its own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

import backend.db.sqlite_writer as sqlite_writer
from backend.db.engine import Database
from backend.db.migrate import upgrade_database
from backend.ledger.service import IdempotentResponse, ledger
from tests.conftest import make_customer
from tests.db.loop_ticks import loop_ticks


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'killa.db'}"
    await asyncio.to_thread(upgrade_database, url)
    database = Database(url)
    yield database
    await database.dispose()


def database_file(db: Database) -> Path:
    return Path(db.url.removeprefix("sqlite+aiosqlite:///"))


def records(owner_id: str, prefix: str, count: int, size: int = 10) -> list[IdempotentResponse]:
    return [
        IdempotentResponse(owner_id, "test", f"{prefix}{i}", "f", 201, {"pad": "x" * size})
        for i in range(count)
    ]


async def test_waiting_for_another_writer_keeps_the_event_loop_running(
    sqlite_db: Database,
) -> None:
    owner = (await make_customer(sqlite_db)).account_id
    other = sqlite3.connect(database_file(sqlite_db), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    async with loop_ticks() as ticks:
        write = asyncio.create_task(
            sqlite_db.run_in_writer(lambda c: ledger.remember_many(c, records(owner, "w", 1)))
        )
        await asyncio.sleep(0.3)
        assert not write.done()
        assert ticks.count >= 20  # the loop kept serving while the write waited
        other.execute("COMMIT")
        await asyncio.wait_for(write, 5)
    other.close()


async def test_a_lock_held_past_the_timeout_fails_the_write(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = (await make_customer(sqlite_db)).account_id
    monkeypatch.setattr(sqlite_writer, "LOCK_TIMEOUT_SECONDS", 0.2)
    other = sqlite3.connect(database_file(sqlite_db), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="locked"):
        await sqlite_db.run_in_writer(lambda c: ledger.remember_many(c, records(owner, "t", 1)))
    other.execute("ROLLBACK")
    other.close()
    # The writer recovers on the next call.
    await sqlite_db.run_in_writer(lambda c: ledger.remember_many(c, records(owner, "t", 1)))


async def test_the_log_is_checkpointed_into_the_database_file(sqlite_db: Database) -> None:
    owner = (await make_customer(sqlite_db)).account_id
    path = database_file(sqlite_db)
    before = path.stat().st_size
    for batch in range(3):
        rows = records(owner, f"c{batch}-", 50, size=8_000)
        await sqlite_db.run_in_writer(partial(ledger.remember_many, responses=rows))
        await asyncio.sleep(sqlite_writer.CHECKPOINT_EVERY_SECONDS + 0.05)
    # The writer's own connection never checkpoints (wal_autocheckpoint=0): only the
    # checkpointer thread can have moved the ~1.2 MB of rows from the log into the file.
    for _ in range(100):
        if path.stat().st_size > before + 1_000_000:
            break
        await asyncio.sleep(0.05)
    assert path.stat().st_size > before + 1_000_000
