"""Sign-in tests run against a local SMTP server and a local Google (see fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from tests.auth.fakes import (
    GOOGLE_CLIENT_ID,
    OTHER_CLIENT_ID,
    FakeGoogle,
    Inbox,
    new_private_key_pem,
    running_google,
    running_smtp_server,
)

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Inbox]:
    with running_smtp_server() as inbox:
        yield inbox


@pytest.fixture
def inbox(smtp_server: Inbox) -> Inbox:
    smtp_server.messages.clear()
    return smtp_server


@pytest.fixture(scope="session")
def google() -> Iterator[FakeGoogle]:
    with running_google() as fake:
        yield fake


@pytest.fixture(scope="session")
def attacker_key_pem() -> bytes:
    return new_private_key_pem()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, inbox: Inbox, google: FakeGoogle) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_base_url="https://gateway.test",
        model_dir=tmp_path / "models",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,
        smtp_security="none",
        google_client_ids=[GOOGLE_CLIENT_ID, OTHER_CLIENT_ID],
        google_certs_url=google.certs_url,
    )


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Like the root fixture, minus the app's lifespan: sign-in needs none of what it starts
    (job dispatcher, MCP session manager), and its tests should not wait on them."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as http:
        yield http


@pytest.fixture
async def make_client(settings: Settings, db: Database) -> AsyncIterator[ClientFactory]:
    """A client for an app on the same database with some settings changed."""
    async with AsyncExitStack() as stack:

        async def make(**changes: Any) -> httpx.AsyncClient:
            changed = settings.model_copy(update=changes)
            app = create_app(changed, database=db)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=changed.base_url)
            )

        yield make
