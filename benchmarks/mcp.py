"""What MCP adds to a call: median latency of `balance_get` over MCP vs `GET /api/v1/balance`.

    python -m benchmarks.mcp [--calls 300]

One real `killa serve` on a loopback port (SQLite in a temporary data dir) serves all of it:

- REST: `GET /api/v1/balance` with a keep-alive httpx client.
- stdio: `killa mcp` as a subprocess (a local agent's setup), which calls that same REST route.
- HTTP: the gateway's own `/mcp` (a remote agent's setup), whose tool calls the gateway in process.
- in-memory: the server in this process, no transport: the tool code and the SDK's dispatch alone.

Calls are sequential (one round trip each) and interleaved, one per path per round, so a busy
machine slows every path alike. Both MCP protocol eras are measured; the overhead is the MCP
median minus the REST median (target: under 3 ms on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from rich.console import Console
from rich.table import Table

from server.mcp_server import build_server
from tests.jobs.test_processes import Server
from tools.gateway_client import GatewayClient

KILLA = str(Path(sys.executable).with_name("killa"))
WARMUP = 20
ERAS = ("legacy", "auto")  # 2025-11-25 handshake, 2026-07-28


Call = Callable[[], Awaitable[None]]


def mcp_call(client: Client) -> Call:
    async def call() -> None:
        result = await client.call_tool("balance_get", {})
        assert not result.is_error, result.content

    return call


async def interleaved_medians(paths: dict[str, Call], calls: int) -> dict[str, float]:
    """One call per path per round, so load on the machine weighs on every path alike."""
    timings: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(WARMUP + calls):
        for name, call in paths.items():
            started = time.perf_counter()
            await call()
            if round_ >= WARMUP:
                timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}


async def measure(base: str, key: str, env: dict[str, str], calls: int) -> dict[str, float]:
    auth = {"Authorization": f"Bearer {key}"}
    stdio = StdioServerParameters(
        command=KILLA, args=["mcp"], env={**env, "KILLA_API_URL": base, "KILLA_API_KEY": key}
    )
    async with AsyncExitStack() as stack:
        rest = await stack.enter_async_context(httpx.AsyncClient(base_url=base, headers=auth))

        async def rest_call() -> None:
            (await rest.get("/api/v1/balance")).raise_for_status()

        paths: dict[str, Call] = {"REST": rest_call}
        # The same tool in this process over the same REST call: what the tool code and the
        # SDK's dispatch cost without a transport, to tell them apart from stdio's and HTTP's.
        gateway = GatewayClient(base_url=base, api_key=lambda: key, sign_in_hint="")
        for era in ERAS:
            client = await stack.enter_async_context(Client(build_server(gateway), mode=era))
            paths[f"in-memory {client.protocol_version}"] = mcp_call(client)
        for era in ERAS:
            client = await stack.enter_async_context(Client(stdio, mode=era))
            paths[f"stdio {client.protocol_version}"] = mcp_call(client)
            http = await stack.enter_async_context(httpx2.AsyncClient(headers=auth))
            transport = streamable_http_client(f"{base}/mcp", http_client=http)
            client = await stack.enter_async_context(Client(transport, mode=era))
            paths[f"HTTP /mcp {client.protocol_version}"] = mcp_call(client)
        return await interleaved_medians(paths, calls)


def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KILLA_")},
            "KILLA_DATA_DIR": str(Path(home) / "data"),
            "KILLA_LOG_LEVEL": "WARNING",
            # No credentials from the developer's own `killa login`.
            "XDG_CONFIG_HOME": str(Path(home) / "config"),
            # The default limit (600/min) would throttle a sequential benchmark.
            "KILLA_RATE_LIMIT_PER_MINUTE": "1000000",
            "KILLA_RATE_LIMIT_BURST": "100000",
        }

        def killa(*args: str) -> str:
            ran = subprocess.run([KILLA, *args], env=env, check=True, capture_output=True)
            return ran.stdout.decode().strip()

        key = killa("accounts", "create", "--email", "bench@example.com")
        killa("credits", "grant", "--email", "bench@example.com", "--usd", "1", "--reason", "b")
        server = Server(env)
        server.start()
        try:
            results = asyncio.run(measure(server.base, key, env, calls))
        finally:
            server.stop()

    rest = results.pop("REST")
    table = Table(title=f"balance_get: median of {calls} calls per path on loopback")
    for column in ("path", "median ms", "x REST", "overhead ms"):
        table.add_column(column, justify="right")
    table.add_row("REST GET /api/v1/balance", f"{rest:.2f}", "1.00", "-")
    for path, median in results.items():
        table.add_row(path, f"{median:.2f}", f"{median / rest:.2f}", f"{median - rest:+.2f}")
    Console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="measured calls per path")
    main(parser.parse_args().calls)
