"""SQLite's writer: group-committed write transactions run on the event loop's own thread, and
the write-ahead log is checkpointed from another.

Why on the loop: a batch is Python (rows, prices, responses) around SQLite calls of a few
microseconds each. A worker thread would hold the GIL for most of it anyway, and every SQLite
call hands the GIL back to the busy event loop and has to win it back: measured here, that
hand-off cost more than the batch. What could block the loop for real is kept off it:

- another process's write lock (the CLI granting credits, say): this connection never waits
  inside SQLite (busy_timeout 0); a busy database is retried after an `asyncio.sleep`;
- checkpoints, the only step that syncs to disk in WAL mode with synchronous=NORMAL: off on this
  connection, run by a thread of their own (`_Checkpointer`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

T = TypeVar("T")

# How long a write waits for another process's lock before it fails: here in asyncio sleeps, on
# the gateway's other connections in SQLite's busy handler (their own threads).
LOCK_TIMEOUT_SECONDS = 30.0
# Checkpoint at most this often: the log then holds a fraction of a second of writes.
CHECKPOINT_EVERY_SECONDS = 0.25


class SqliteWriter:
    def __init__(self, url: URL, *, engine_kwargs: dict[str, Any]) -> None:
        self.engine = create_engine(
            url.set(drivername="sqlite"),
            connect_args={"timeout": 0},
            pool_size=1,
            max_overflow=0,
            **engine_kwargs,
        )
        event.listen(self.engine, "connect", _writer_connection)
        event.listen(self.engine, "begin", _begin_immediate)
        self._connection: Connection | None = None  # kept open: this is the only writer
        self._checkpointer = _Checkpointer(url.database or "")

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in one write transaction: committed if it returns, rolled back if
        it raises. The caller keeps other writers of this process out meanwhile."""
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        pause = 0.001
        while True:
            if self._connection is None:
                self._connection = self.engine.connect()
            try:
                with self._connection.begin():
                    result = fn(self._connection)
            except OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    self._drop_connection()
                    raise
            else:
                self._checkpointer.nudge()
                return result
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def close(self) -> None:
        self._drop_connection()
        self.engine.dispose()
        self._checkpointer.close()

    def _drop_connection(self) -> None:
        # After a failure other than a busy database, start over on a fresh connection.
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Checkpointer:
    """PASSIVE checkpoints (they never block readers or writers) from a thread of their own."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="killa-checkpoint")
        self._connection: sqlite3.Connection | None = None  # used only by that thread
        self._running: Future[None] | None = None
        self._last = 0.0

    def nudge(self) -> None:
        now = time.monotonic()
        if now - self._last < CHECKPOINT_EVERY_SECONDS:
            return
        if self._running is not None and not self._running.done():
            return
        self._last = now
        self._running = self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.path, timeout=LOCK_TIMEOUT_SECONDS, check_same_thread=False
            )
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()

        self._thread.submit(close_connection)
        self._thread.shutdown(wait=True)


def configure_connection(dbapi_connection: Any, *, busy_timeout_seconds: float) -> None:
    """Every gateway connection's settings: WAL, NORMAL sync, foreign keys, and BEGIN left to
    SQLAlchemy's "begin" event (pysqlite's implicit BEGIN is deferred and cannot be IMMEDIATE)."""
    dbapi_connection.isolation_level = None
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={round(busy_timeout_seconds * 1000)}",
    ):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _writer_connection(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Never sleep in SQLite's busy handler on the event loop; leave checkpoints to the
    # checkpointer.
    configure_connection(dbapi_connection, busy_timeout_seconds=0)
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _busy(exc: OperationalError) -> bool:
    return isinstance(exc.orig, sqlite3.OperationalError) and exc.orig.sqlite_errorcode in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )
