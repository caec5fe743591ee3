"""MCP fixtures: an in-process session on the tools (both protocol eras) over a gateway app that
may fetch from the test media host, and a real `killa serve` for the transport tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult
from starlette.applications import Starlette

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from server.mcp_server import build_server
from tests.conftest import Customer
from tests.jobs.conftest import MediaHost, media_host  # noqa: F401 - the fixture, shared
from tests.jobs.test_processes import Server
from tools.gateway_client import GatewayClient

T = TypeVar("T")
KILLA = str(Path(sys.executable).with_name("killa"))
# A handshake-era `initialize` request, for tests that speak the protocol by hand.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
# The in-memory client speaks 2025-11-25 in legacy mode and negotiates 2026-07-28 otherwise.
ERAS = {"legacy": "2025-11-25", "auto": "2026-07-28"}


@pytest.fixture
def settings(settings: Settings, media_host: MediaHost) -> Settings:  # noqa: F811
    return settings.model_copy(update={"fetch_allowed_hosts": [media_host.address]})


@pytest.fixture
def app(settings: Settings, db: Database) -> Starlette:
    return create_app(settings, database=db)


@pytest.fixture(params=list(ERAS))
def era(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def in_process_gateway(app: Starlette, api_key: str | None) -> GatewayClient:
    return GatewayClient(
        base_url="https://gateway.test",
        api_key=lambda: api_key,
        sign_in_hint="Run `killa login`.",
        transport=lambda: httpx.ASGITransport(app=app),
    )


@asynccontextmanager
async def held_in_own_task(manager: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """`async with manager` in a task of its own, for fixtures: the MCP client's anyio cancel
    scopes must be left by the task that entered them, and pytest-asyncio sets a fixture up and
    tears it down in different tasks."""
    entered: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    leave = asyncio.Event()

    async def hold() -> None:
        async with manager as value:
            entered.set_result(value)
            await leave.wait()

    task = asyncio.create_task(hold())
    first: list[asyncio.Future[Any]] = [task, entered]
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if not entered.done():
        task.result()  # raises why it could not enter
    try:
        yield entered.result()
    finally:
        leave.set()
        await task


@pytest.fixture
async def mcp(
    client: httpx.AsyncClient, app: Starlette, customer: Customer, era: str
) -> AsyncIterator[Client]:
    """A session on a server whose tools call the running app in process, as `customer`."""
    server = build_server(in_process_gateway(app, customer.api_key))
    async with held_in_own_task(Client(server, mode=era)) as session:
        assert session.protocol_version == ERAS[era]
        yield session


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content if block.type == "text")


# --- a real gateway for the transport tests -----------------------------------------------------


@dataclass(frozen=True)
class LiveGateway:
    url: str
    api_key: str
    env: dict[str, str]  # a `killa` environment that talks to this gateway, signed out

    def killa(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(
            [KILLA, *args],
            env={**self.env, **(env or {})},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()


@pytest.fixture(scope="session")
def live_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    media_host: MediaHost,  # noqa: F811
) -> Iterator[LiveGateway]:
    """`killa serve` on a loopback port, with an account holding $5."""
    home = tmp_path_factory.mktemp("live")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KILLA_")},
        "KILLA_DATA_DIR": str(home / "data"),
        "KILLA_FETCH_ALLOWED_HOSTS": json.dumps([media_host.address]),
        # No credentials file from the developer's own `killa login`.
        "XDG_CONFIG_HOME": str(home / "config"),
        # Device links (`killa mcp`'s sign-in) polled every second, not every five.
        "KILLA_DEVICE_LINK_INTERVAL_SECONDS": "1",
    }
    server = Server(env)
    gateway = LiveGateway(server.base, "", env)
    key = gateway.killa("accounts", "create", "--email", "live@example.com")
    gateway.killa("credits", "grant", "--email", "live@example.com", "--usd", "5", "--reason", "t")
    server.start()
    try:
        yield LiveGateway(server.base, key, {**env, "KILLA_API_URL": server.base})
    finally:
        server.stop()
