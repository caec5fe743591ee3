"""Group commit: concurrent writers share one transaction.

A submit's own SQL takes tens of microseconds; what costs is getting a transaction to the database
and back (a thread hop, a commit). `GroupCommit` lets every caller that arrives while a transaction
is in flight ride on the next one, so under load that cost is paid once per batch instead of once
per call, and with no load a lone caller still commits at once (there is no timer to wait for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeAlias, TypeVar, Union

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from backend.db.engine import Database

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# Per item: what its caller gets back, or the exception its caller raises. A per-item refusal
# (say, insufficient funds) must not roll back the others, so `write` returns it, not raises it.
Outcome: TypeAlias = Union[ResultT, Exception]  # noqa: UP007 (a generic alias needs Union here)
Write: TypeAlias = Callable[[Connection, Sequence[ItemT]], list[Outcome[ResultT]]]

MAX_BATCH = 64


class GroupCommit(Generic[ItemT, ResultT]):
    """`await commit(item)` runs `write(connection, items)` for a batch of concurrent items in one
    transaction of `db.run_in_writer`, and hands each caller its item's outcome.

    `write` is the whole transaction's body and sees every item at once, so it can use one
    statement per table for the batch. If it raises an `IntegrityError` (one item breaking a
    unique key: a reused idempotency key, say), each item of that batch is retried in a
    transaction of its own, so only the offending caller gets the error.
    """

    def __init__(self, db: Database, write: Write[ItemT, ResultT], *, max_batch: int = MAX_BATCH):
        self._db = db
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def commit(self, item: ItemT) -> ResultT:
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None:
            # Its own task: a caller that goes away (client disconnect) cannot abort a
            # transaction that carries other callers' items.
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    await self._commit_batch(batch)
                except BaseException:
                    # Cancelled (shutdown): nobody will write these items or the queued ones.
                    for _, future in [*batch, *self._waiting]:
                        future.cancel()
                    self._waiting.clear()
                    raise
        finally:
            self._flusher = None

    async def _commit_batch(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        items = [item for item, _ in batch]
        try:
            outcomes = await self._db.run_in_writer(lambda conn: self._write(conn, items))
            if len(outcomes) != len(batch):
                raise RuntimeError("a group-commit write must return one outcome per item")
        except IntegrityError as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for entry in batch:
                await self._commit_batch([entry])
            return
        except Exception as exc:
            for _, future in batch:
                _settle(future, exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, outcome)


def _settle(future: asyncio.Future[ResultT], outcome: Outcome[ResultT]) -> None:
    if future.done():  # its caller was cancelled
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
