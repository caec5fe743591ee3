"""Throwaway migrated databases for benchmarks: a temp SQLite file, and PostgreSQL if set."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db.migrate import upgrade_database

POSTGRES_ENV = "KILLA_TEST_POSTGRES_URL"


@asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await asyncio.to_thread(upgrade_database, url)
        yield url


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    name = f"killa_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade_database, url)
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def backends() -> list[str]:
    return ["sqlite", "postgres"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


@asynccontextmanager
async def database_for(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        async with sqlite_database() as url:
            yield url
    else:
        async with postgres_database(os.environ[POSTGRES_ENV]) as url:
            yield url
