"""`build_server()`: the one MCP server, shared by `killa mcp` (stdio), the gateway's `/mcp` and the
tests; and the `killa mcp` command."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import click
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from backend import __version__
from backend.discovery.skill import ENTRYPOINT, Skill
from server.login import (
    API_KEY_ENV,
    API_URL_ENV,
    DEFAULT_API_URL,
    api_key_from_environment_or_file,
    load_credentials,
)
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

    server: MCPServer[GatewayClient] = MCPServer(
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
    """The gateway `killa login` signed in to (or KILLA_API_URL), with its key read per call."""
    stored = load_credentials()
    api_url = os.environ.get(API_URL_ENV) or (stored.api_url if stored else DEFAULT_API_URL)

    def api_key() -> str | None:
        found = api_key_from_environment_or_file()
        return found[0] if found else None

    return GatewayClient(base_url=api_url, api_key=api_key, sign_in_hint=STDIO_SIGN_IN_HINT)


@click.command("mcp")
def mcp_command() -> None:
    """Serve the Killa Tamata tools over MCP on stdio (Claude Desktop, Claude Code, Codex).

    Talks to KILLA_API_URL (default: the gateway `killa login` used) with KILLA_API_KEY or the
    key `killa login` stored.
    """
    from backend.http.logging import configure_logging

    # stdout carries the protocol: logs go to stderr, and only what matters.
    configure_logging("WARNING")
    build_server(stdio_gateway()).run("stdio")


if __name__ == "__main__":  # the MCPB manifest's entry point
    mcp_command()
