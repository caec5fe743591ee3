"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when configured) and an app."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from backend.accounts.service import accounts, api_keys
from backend.app import create_app
from backend.db.engine import Database
from backend.db.migrate import upgrade_database
from backend.ledger.service import ledger
from backend.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
POSTGRES_URL_ENV = "KILLA_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_URL_ENV)


def pytest_report_header() -> str:
    if POSTGRES_URL:
        return (
            f"PostgreSQL tests: on ({make_url(POSTGRES_URL).render_as_string(hide_password=True)})"
        )
    return f"PostgreSQL tests: SKIPPED — set {POSTGRES_URL_ENV} (.ci/run does) to run them"


async def _create_postgres_database() -> str:
    """A fresh database per use so tests never see each other's rows."""
    assert POSTGRES_URL is not None
    name = f"killa_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    assert POSTGRES_URL is not None
    name = make_url(url).database
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


POSTGRES = pytest.param(
    "postgres",
    marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not POSTGRES_URL, reason=f"{POSTGRES_URL_ENV} is not set"),
    ],
)


@pytest.fixture(params=["sqlite", POSTGRES])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend_kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'killa.db'}"
        await asyncio.to_thread(upgrade_database, url)
        yield url
        return
    url = await _create_postgres_database()
    try:
        await asyncio.to_thread(upgrade_database, url)
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_base_url="https://gateway.test",
        model_dir=tmp_path / "models",
        # Threads keep unit tests fast; tests/jobs/test_processes.py covers worker processes.
        worker_mode="thread",
    )


@pytest.fixture
def app(settings: Settings, db: Database) -> Starlette:
    return create_app(settings, database=db)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as http,
    ):
        yield http


@dataclass(frozen=True)
class Customer:
    account_id: str
    email: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def make_customer(db: Database, *, usd_micros: int = 0, email: str | None = None) -> Customer:
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    async with db.transaction() as session:
        account = await accounts.create(session, email)
        issued = await api_keys.issue(session, account.id, label="test")
        if usd_micros:
            await ledger.credit(
                session,
                account.id,
                usd_micros,
                source="grant",
                external_ref=f"test:{uuid.uuid4()}",
                actor="test",
                reason="test funds",
            )
    return Customer(account.id, email, issued.secret)


@pytest.fixture
async def customer(db: Database) -> Customer:
    return await make_customer(db, usd_micros=10_000_000)


S3_CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    import boto3

    name = f"killa-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_CREDENTIALS["access_key"],
        aws_secret_access_key=S3_CREDENTIALS["secret_key"],
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parents[1] / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
