"""Engine and session factory for SQLite (embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from backend.db.postgres_writer import PostgresWriter
from backend.db.sqlite_writer import LOCK_TIMEOUT_SECONDS, SqliteWriter, configure_connection

T = TypeVar("T")

# Marks a transaction that will write: on SQLite it starts with BEGIN IMMEDIATE so two writers
# never both read then race to upgrade their lock (which SQLite answers with SQLITE_BUSY).
WRITE_OPTION = "killa_write"


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (job requests, pricing meta, stored responses) are written on every submit.
_JSON_CODEC: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    kwargs = {**_JSON_CODEC, **kwargs}
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": LOCK_TIMEOUT_SECONDS}, **kwargs)
        _configure_sqlite(engine.sync_engine)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        configure_connection(dbapi_connection, busy_timeout_seconds=LOCK_TIMEOUT_SECONDS)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Reads run without BEGIN (the driver is in autocommit): one round trip each, no lock.
        if connection.get_execution_options().get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine plus the one place that opens, commits and rolls back transactions.

    Services flush and never commit; a request (or a job step) runs inside `transaction()`, which
    commits on success and rolls back on any exception. `transaction(write=False)` is for reads
    only and runs in autocommit mode (no BEGIN/COMMIT round trips): each statement sees the
    latest committed state, so it must never write.

    `run_in_writer(fn)` is the other place that commits: it runs a whole write transaction as one
    plain function `fn(connection)`, for group commit (`GroupCommit`). On SQLite it runs on a
    connection of its own (backend/db/sqlite_writer.py): an aiosqlite session pays a thread hop
    for every statement, about 0.1 ms each here. On PostgreSQL it runs on a blocking psycopg
    connection in a thread (backend/db/postgres_writer.py): the async engine costs the event loop
    about 0.25 ms of CPU per statement.
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time: queue writers in process instead of letting them
        # spin in SQLite's busy handler (which sleeps up to 100 ms between tries).
        self._sqlite_write_lock = asyncio.Lock() if self.is_sqlite else None

    @cached_property
    def _sqlite_writer(self) -> SqliteWriter:
        return SqliteWriter(make_url(self.url), engine_kwargs=_JSON_CODEC)

    @cached_property
    def _postgres_writer(self) -> PostgresWriter:
        return PostgresWriter(self.url, engine_kwargs=_JSON_CODEC)

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        if self._sqlite_write_lock is not None and write:
            async with self._sqlite_write_lock, self._session(write=True) as session:
                yield session
        else:
            async with self._session(write=write) as session:
                yield session

    @asynccontextmanager
    async def _session(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            options: dict[str, Any] = {WRITE_OPTION: write}
            if not write and not self.is_sqlite:
                options["isolation_level"] = "AUTOCOMMIT"
            await session.connection(execution_options=options)
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    async def run_in_writer(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in one write transaction: committed if it returns, rolled back if
        it raises. Writers take turns with `transaction()` (one SQLite writer at a time)."""
        if self._sqlite_write_lock is None:
            return await self._postgres_writer.run(fn)
        async with self._sqlite_write_lock:
            return await self._sqlite_writer.run(fn)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if "_sqlite_writer" in self.__dict__:
            await asyncio.to_thread(self._sqlite_writer.close)
        if "_postgres_writer" in self.__dict__:
            await asyncio.to_thread(self._postgres_writer.close)
