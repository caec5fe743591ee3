"""Group commit: concurrent writers share transactions, yet each gets only its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from backend.db.engine import Database
from backend.db.group_commit import GroupCommit, Outcome
from backend.ledger.models import IdempotencyRecord
from backend.ledger.service import IdempotentResponse, ledger
from tests.conftest import make_customer
from tests.db.idempotency_records import stored_keys


def response(owner_id: str, key: str) -> IdempotentResponse:
    return IdempotentResponse(owner_id, "test", key, "f", 201, {"key": key})


class Recorder:
    """A write that stores each item's idempotency record and notes the batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(
        self, connection: Connection, items: Sequence[IdempotentResponse]
    ) -> list[Outcome[str]]:
        self.batches.append(len(items))
        ledger.remember_many(connection, items)
        return [item.key for item in items]


async def test_a_lone_caller_commits_at_once(db: Database) -> None:
    owner = (await make_customer(db)).account_id
    write = Recorder()
    group = GroupCommit(db, write)
    assert await group.commit(response(owner, "only")) == "only"
    assert write.batches == [1]
    assert await stored_keys(db) == {"only"}


async def test_callers_arriving_together_share_a_transaction(db: Database) -> None:
    owner = (await make_customer(db)).account_id
    write = Recorder()
    group = GroupCommit(db, write, max_batch=8)
    keys = [f"k{i}" for i in range(20)]
    results = await asyncio.gather(*(group.commit(response(owner, key)) for key in keys))
    assert results == keys  # each caller got its own item's outcome
    assert sum(write.batches) == 20
    assert max(write.batches) == 8  # batched, and never past max_batch
    assert len(write.batches) < 20
    assert await stored_keys(db) == set(keys)


async def test_an_outcome_that_is_an_exception_is_raised_to_its_caller_only(
    db: Database,
) -> None:
    owner = (await make_customer(db)).account_id

    def write(connection: Connection, items: Sequence[str]) -> list[Outcome[str]]:
        ledger.remember_many(connection, [response(owner, k) for k in items if k != "bad"])
        return [ValueError("refused") if k == "bad" else k for k in items]

    group: GroupCommit[str, str] = GroupCommit(db, write)
    results = await asyncio.gather(
        *(group.commit(key) for key in ("a", "bad", "b")), return_exceptions=True
    )
    assert results[0] == "a"
    assert results[2] == "b"
    assert isinstance(results[1], ValueError)
    assert await stored_keys(db) == {"a", "b"}


async def test_a_broken_unique_key_fails_its_own_caller_and_commits_the_others(
    db: Database,
) -> None:
    owner = (await make_customer(db)).account_id
    await GroupCommit(db, Recorder()).commit(response(owner, "taken"))
    write = Recorder()
    group = GroupCommit(db, write)
    results = await asyncio.gather(
        *(group.commit(response(owner, key)) for key in ("x", "taken", "y")),
        return_exceptions=True,
    )
    assert results[0] == "x"
    assert results[2] == "y"
    assert isinstance(results[1], IntegrityError)
    assert write.batches[0] == 3  # tried together first, then one by one
    assert await stored_keys(db) == {"taken", "x", "y"}


async def test_a_failing_write_fails_every_caller_of_its_batch_and_commits_nothing(
    db: Database,
) -> None:
    owner = (await make_customer(db)).account_id

    def write(connection: Connection, items: Sequence[str]) -> list[Outcome[str]]:
        ledger.remember_many(connection, [response(owner, k) for k in items])
        raise RuntimeError("the write broke halfway")

    group: GroupCommit[str, str] = GroupCommit(db, write)
    results = await asyncio.gather(*(group.commit(k) for k in "abc"), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await stored_keys(db) == set()


async def test_a_caller_that_goes_away_does_not_abort_the_shared_transaction(
    db: Database,
) -> None:
    owner = (await make_customer(db)).account_id
    group = GroupCommit(db, Recorder())
    leaving = asyncio.create_task(group.commit(response(owner, "gone")))
    staying = asyncio.create_task(group.commit(response(owner, "kept")))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == "kept"
    with pytest.raises(asyncio.CancelledError):
        await leaving
    # Its item was already on its way: like a request whose client hung up after sending it.
    assert await stored_keys(db) == {"gone", "kept"}
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 2
