"""`BulkWrites`: several tables' rows in one statement on PostgreSQL, one per table on SQLite;
`BulkIncrement`: a batch's balance moves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from backend.db.bulk import BulkIncrement, BulkInsert, BulkWrites
from backend.db.engine import Database
from backend.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from backend.ledger.service import ledger
from tests.conftest import make_customer

MOVE = BulkIncrement(LedgerAccount, "balance_micros")
TRANSACTIONS = BulkInsert(LedgerTransaction)
ENTRIES = BulkInsert(LedgerEntry)
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def transaction_row(txn_id: str, owner_id: str) -> dict[str, Any]:
    return {
        "id": txn_id,
        "kind": "hold",
        "owner_id": owner_id,
        "amount_micros": 700,
        "hold_id": None,
        "external_ref": None,
        "actor": "t",
        "reason": "bulk writes test",
        "details": {},
        "created_at": NOW,
    }


def entry_rows(txn_id: str, owner_id: str) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": txn_id,
            "ledger_account_id": f"{owner_id}:{bucket}",
            "amount_micros": amount,
            "created_at": NOW,
        }
        for bucket, amount in (("available", -700), ("held", 700))
    ]


def moves(owner_id: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{owner_id}:available", "delta": -700},
        {"id": f"{owner_id}:held", "delta": 700},
    ]


@contextmanager
def statements_sent(db: Database) -> Iterator[list[str]]:
    """The SQL the writer's connection sends meanwhile."""
    sent: list[str] = []
    writer_engine: Engine = db._sqlite_writer.engine if db.is_sqlite else db._postgres_writer.engine

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(writer_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(writer_engine, "before_cursor_execute", record)


async def available_and_held(db: Database, owner_id: str) -> tuple[int, int]:
    async with db.transaction(write=False) as session:
        balance = await ledger.balance(session, owner_id)
    return balance.available_micros, balance.held_micros


async def test_a_movement_and_its_rows_go_in_one_statement_on_postgresql(db: Database) -> None:
    owner = (await make_customer(db, usd_micros=10_000)).account_id

    def write(connection: Connection) -> None:
        writes = BulkWrites()
        # Children before their parent: PostgreSQL checks foreign keys at the statement's end.
        # SQLite checks them per statement, so there the order added is the order run.
        if connection.dialect.name == "postgresql":
            writes.add(ENTRIES, entry_rows("txn_bulk", owner))
            writes.add(TRANSACTIONS, [transaction_row("txn_bulk", owner)])
        else:
            writes.add(TRANSACTIONS, [transaction_row("txn_bulk", owner)])
            writes.add(ENTRIES, entry_rows("txn_bulk", owner))
        writes.add(MOVE, moves(owner))
        writes.add(TRANSACTIONS, [])  # nothing to write: no statement
        writes.execute(connection)

    with statements_sent(db) as sent:
        await db.run_in_writer(write)

    writes_sent = [sql for sql in sent if not sql.lstrip().upper().startswith(("BEGIN", "SELECT"))]
    assert len(writes_sent) == (3 if db.is_sqlite else 1), writes_sent
    assert await available_and_held(db, owner) == (9_300, 700)
    async with db.transaction(write=False) as session:
        entries = list(
            await session.scalars(
                select(LedgerEntry.amount_micros).where(LedgerEntry.transaction_id == "txn_bulk")
            )
        )
        assert sorted(entries) == [-700, 700]


async def test_one_broken_row_writes_nothing_of_the_batch(db: Database) -> None:
    owner = (await make_customer(db, usd_micros=10_000)).account_id

    def write(connection: Connection) -> None:
        writes = BulkWrites()
        writes.add(MOVE, moves(owner))
        writes.add(TRANSACTIONS, [transaction_row("txn_twice", owner)] * 2)  # same primary key
        writes.execute(connection)

    with pytest.raises(IntegrityError):
        await db.run_in_writer(write)
    assert await available_and_held(db, owner) == (10_000, 0)
    async with db.transaction(write=False) as session:
        assert (
            list(
                await session.scalars(
                    select(LedgerTransaction.id).where(LedgerTransaction.id == "txn_twice")
                )
            )
            == []
        )


async def test_an_increment_takes_each_row_once(db: Database) -> None:
    owner = (await make_customer(db, usd_micros=10_000)).account_id
    twice = [{"id": f"{owner}:available", "delta": -1}] * 2

    with pytest.raises(ValueError, match="each id once"):
        await db.run_in_writer(lambda connection: MOVE(connection, twice))
    await db.run_in_writer(lambda connection: MOVE(connection, moves(owner)))
    assert await available_and_held(db, owner) == (9_300, 700)
