"""PostgreSQL's writer: group-committed write transactions on a plain (blocking) psycopg
connection, in a thread of their own.

Over the async engine, every statement of such a transaction is a greenlet hop, an awaited socket
round trip and event-loop wake-ups: about 250 µs of the loop's CPU each, measured here, and a
batch of submits makes several (the key check, the bucket lock, its writes). A blocking
connection spends a fraction of that, and while it waits on the server it lets go of the GIL, so
the event loop keeps serving requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

T = TypeVar("T")

# Writers in flight at once; more wait for a thread. Group commit keeps one batch per queue in
# flight, so this is rarely reached.
WRITER_CONNECTIONS = 4


class PostgresWriter:
    def __init__(self, url: str, *, engine_kwargs: dict[str, Any]) -> None:
        # `postgresql+psycopg` names psycopg 3 for both engines: here its blocking connection.
        self.engine = create_engine(
            url,
            pool_size=WRITER_CONNECTIONS,
            max_overflow=0,
            pool_pre_ping=True,
            **engine_kwargs,
        )
        self._threads = ThreadPoolExecutor(
            max_workers=WRITER_CONNECTIONS, thread_name_prefix="killa-pg-writer"
        )

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in one write transaction: committed if it returns, rolled back if
        it raises."""

        def transaction() -> T:
            with self.engine.begin() as connection:
                return fn(connection)

        # A caller cancelled meanwhile does not stop the thread: its transaction still commits
        # or rolls back as a whole, as SQLite's writer (on the loop) runs to its end too.
        return await asyncio.get_running_loop().run_in_executor(self._threads, transaction)

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        self.engine.dispose()
