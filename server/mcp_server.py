"""`build_server()`: the one MCP server, shared by `killa mcp` (stdio), the gateway's `/mcp` and the
tests; and the `killa mcp` command."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import click
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from backend import __version__
from backend.discovery.skill import ENTRYPOINT, Skill
from server.login import API_KEY_ENV, API_URL_ENV, DEFAULT_API_URL, load_credentials
from server.stdio import stdio_streams
from server.stdio_sign_in import DeviceLinkSignIn, StoredKey
from tools import account, jobs, media
from tools.gateway_client import GatewayClient

STDIO_SIGN_IN_HINT = (
    f"Ask the user to run `killa login` in a terminal (or to set {API_KEY_ENV} for this MCP "
    "server), then call the tool again."
)


def skill_instructions(skill: Skill) -> str:
    """The skill's body: the same guidance an agent gets from the installed skill."""
    text = (skill.root / ENTRYPOINT).read_text(encoding="utf-8")
    _, _, body = text.split("---", 2)
    return body.strip()


class KillaServer(MCPServer[GatewayClient]):
    """The SDK's server, serving `run("stdio")` over our event-loop transport (server/stdio.py)."""

    async def run_stdio_async(self) -> None:
        # The SDK's own `run_stdio_async`, with our streams in place of `stdio_server()`'s.
        lowlevel = self._lowlevel_server
        async with stdio_streams() as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def build_server(
    gateway: GatewayClient,
    *,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
) -> MCPServer[GatewayClient]:
    """Every tool and resource over `gateway`, which the server lifespan opens and closes."""
    skill = Skill()

    @asynccontextmanager
    async def lifespan(server: MCPServer[GatewayClient]) -> AsyncIterator[GatewayClient]:
        async with gateway:
            yield gateway

    server = KillaServer(
        skill.name,
        title="Killa Tamata",
        description=skill.description,
        instructions=skill_instructions(skill),
        version=__version__,
        token_verifier=token_verifier,
        auth=auth,
        tools=[*media.tools(), *jobs.tools(), *account.tools()],
        lifespan=lifespan,
        # The SDK configures root logging when nothing has; keep it from adding INFO chatter.
        log_level="WARNING",
    )
    jobs.add_resources(server)
    account.add_resources(server, gateway)
    return server


def stdio_gateway() -> GatewayClient:
    """The gateway `killa login` signed in to (or KILLA_API_URL), with the key asked per call and
    the device link offered when there is none (server/stdio_sign_in.py)."""
    stored = load_credentials()
    api_url = os.environ.get(API_URL_ENV) or (stored.api_url if stored else DEFAULT_API_URL)
    return GatewayClient(
        base_url=api_url,
        api_key=StoredKey(),
        sign_in_hint=STDIO_SIGN_IN_HINT,
        sign_in=DeviceLinkSignIn(api_url=api_url),
    )


@click.command("mcp")
def mcp_command() -> None:
    """Serve the Killa Tamata tools over MCP on stdio (Claude Desktop, Claude Code, Codex).

    Talks to KILLA_API_URL (default: the gateway `killa login` used) with KILLA_API_KEY or the
    key `killa login` stored; with neither, a client that can open URLs is offered the device
    link `killa login` uses.
    """
    from backend.http.logging import configure_logging

    # stdout carries the protocol: logs go to stderr, and only what matters.
    configure_logging("WARNING")
    server = build_server(stdio_gateway())
    # What `server.run("stdio")` does, on uvloop where it is installed (uvicorn[standard] brings
    # it, except on Windows): the event loop's own work in C cut this process's CPU time per
    # tool call from 1.5 to 1.25 ms.
    uvloop = importlib.util.find_spec("uvloop") is not None
    anyio.run(server.run_stdio_async, backend_options={"use_uvloop": uvloop})


if __name__ == "__main__":  # the MCPB manifest's entry point
    mcp_command()
