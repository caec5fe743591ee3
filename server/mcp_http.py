"""The gateway's own `/mcp`: streamable HTTP with bearer API keys, the tools calling the gateway
app in process.

`backend/app.py` adds `routes` last and enters `run()` in its lifespan. Only the MCP
paths are routed to the SDK's app: mounting it at `/` would answer every unknown path with the
SDK's plain-text 404 instead of the gateway's error shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import cors_middleware
from mcp.server.auth.settings import AuthSettings
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.auth import ProtectedResourceMetadata
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from backend.http.context import AppContext
from backend.settings import Settings
from server.json_first import JsonFirstResponses
from server.mcp_server import build_server
from tools.gateway_client import GatewayClient

MCP_PATH = "/mcp"
PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
HTTP_SIGN_IN_HINT = "Connect to /mcp with a valid key: Authorization: Bearer <api key>."


class ApiKeyVerifier:
    """The SDK's token verifier over the gateway's own key check and key cache.

    Every MCP message is authenticated; the cache (backend/accounts/key_cache.py) spares each a
    database read. A key revoked by another process can at most list tools until the cache lets
    it go; each tool call passes the gateway's own key check again.
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = await self.ctx.keys.principal(self.ctx.db, token)
        if principal is None:
            return None
        # Sessions belong to the key that opened them (the SDK compares these on every request).
        return AccessToken(
            token=token,
            client_id=principal.account_id,
            subject=principal.api_key_id,
            scopes=[],
        )


def caller_api_key() -> str | None:
    """The bearer key of the `/mcp` request being served: the tools call the gateway with it."""
    token = get_access_token()
    return token.token if token else None


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: the public host, loopback and the configured extras only."""
    public = httpx.URL(settings.public_base_url)
    public_host = public.netloc.decode("ascii")
    public_origin = f"{public.scheme}://{public_host}"
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[public_host, *LOOPBACK_HOSTS, *settings.mcp_allowed_hosts],
        allowed_origins=[
            public_origin,
            *LOOPBACK_ORIGINS,
            *settings.cors_origins,
            *settings.mcp_allowed_origins,
        ],
    )


@dataclass(frozen=True)
class HostedMcp:
    routes: list[BaseRoute]
    session_manager: StreamableHTTPSessionManager

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run the session manager for the host's lifespan, in a task of its own.

        Its anyio task group must be left by the task that entered it, while a host may start
        and stop its lifespan from different tasks (pytest-asyncio fixtures do).
        """
        started, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with self.session_manager.run():
                started.set()
                await stop.wait()

        task = asyncio.create_task(serve(), name="mcp-session-manager")
        ready = asyncio.create_task(started.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # it failed to start: raise why
        try:
            yield
        finally:
            stop.set()
            await task


def hosted_mcp(ctx: AppContext, gateway_app: Callable[[], ASGIApp]) -> HostedMcp:
    """`gateway_app` returns the gateway itself (built after its routes), which the tools call."""
    settings = ctx.settings
    resource_url = settings.absolute_url(MCP_PATH)
    gateway = GatewayClient(
        base_url=settings.base_url,
        api_key=caller_api_key,
        sign_in_hint=HTTP_SIGN_IN_HINT,
        # In process, with no network hop: a gateway 500 comes back as its JSON answer.
        app=gateway_app,
    )
    server = build_server(
        gateway,
        token_verifier=ApiKeyVerifier(ctx),
        auth=AuthSettings.model_validate(
            {
                # API keys come from this gateway (`killa login`, the sign-in pages).
                "issuer_url": settings.base_url,
                "resource_server_url": resource_url,
                # Keys carry no audience; the verifier accepts only this gateway's own keys.
                "validate_token_resource": False,
            }
        ),
    )
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings),
        max_request_body_size=settings.max_body_bytes,
    )
    # RFC 9728 puts the metadata at the path-suffixed URL (the one 401s point to); clients that
    # look only at the bare well-known path get the same document.
    metadata = cors_middleware(
        ProtectedResourceMetadataHandler(
            # Validated from strings so the model keeps the issuer's empty path (no "/" added).
            ProtectedResourceMetadata.model_validate(
                {
                    "resource": resource_url,
                    "authorization_servers": [settings.base_url],
                    "resource_name": "Killa Tamata MCP",
                    "resource_documentation": settings.absolute_url(
                        "/skills/killa-tamata/SKILL.md"
                    ),
                }
            )
        ).handle,
        ["GET", "OPTIONS"],
    )
    return HostedMcp(
        routes=[
            Route(MCP_PATH, JsonFirstResponses(app)),
            Route(PROTECTED_RESOURCE_PATH + MCP_PATH, metadata, methods=["GET", "OPTIONS"]),
            Route(PROTECTED_RESOURCE_PATH, metadata, methods=["GET", "OPTIONS"]),
        ],
        session_manager=server.session_manager,
    )
