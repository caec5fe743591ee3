"""How `killa mcp` (stdio) finds its API key, and the sign-in it offers when there is none.

The key is `KILLA_API_KEY`, else the one `killa login` stored. When a tool needs a key and neither
exists, a client that declared URL-mode elicitation is offered the same RFC 8628 device link
`killa login` uses: the tool call fails with `UrlElicitationRequiredError` (JSON-RPC -32042, which
works in both protocol eras) carrying the verification URL with its user code, while the server
polls in the background. Once the user approves, the key is stored exactly as `killa login` stores
it (the 0600 credentials file), and the next tool call uses it. Other clients keep getting the
"run `killa login`" tool error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import UrlElicitationRequiredError
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitRequestURLParams
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from server.login import (
    API_KEY_ENV,
    approved_credentials,
    credentials_path,
    load_credentials,
    save_credentials,
    user_agent,
)
from tools.gateway_client import GatewayCallError, GatewayClient

logger = logging.getLogger(__name__)


class StoredKey:
    """`KILLA_API_KEY`, else the key `killa login` stored, asked on every tool call.

    The credentials file is read again only when it changes (a new login or logout replaces it),
    not on every call: a stat instead of a read and a JSON parse.
    """

    def __init__(self) -> None:
        self._path = credentials_path()
        self._seen: tuple[int, int, int] | None = None
        self._key: str | None = None

    def __call__(self) -> str | None:
        if key := os.environ.get(API_KEY_ENV, "").strip():
            return key
        try:
            stat = os.stat(self._path)
        except OSError:
            self._seen, self._key = None, None
            return None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            stored = load_credentials()
            self._seen, self._key = seen, stored.api_key if stored else None
        return self._key


@dataclass
class PendingLink:
    device_code: str  # the secret the poll exchanges for the key: never leaves this process
    user_code: str
    url: str  # the verification URL with the user code filled in
    elicitation_id: str
    interval: float
    deadline: float  # time.monotonic() when the gateway forgets the link

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


class DeviceLinkSignIn:
    """The gateway's `SignIn` under `killa mcp`: the device link, offered through URL elicitation.

    One link at a time: calls made while it waits for approval offer the same URL again.
    """

    def __init__(self, *, api_url: str, key_label: str | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.key_label = key_label or f"killa mcp on {socket.gethostname()}"[:64]
        self._pending: PendingLink | None = None
        self._poller: asyncio.Task[None] | None = None
        self._starting = anyio.Lock()

    async def offer(self, ctx: Context[Any], gateway: GatewayClient) -> None:
        capabilities = ctx.client_capabilities
        elicitation = capabilities.elicitation if capabilities else None
        if elicitation is None or elicitation.url is None:
            return  # the client cannot open a URL for the user: "run `killa login`" stands
        async with self._starting:
            link = self._pending
            if link is None or link.expired:
                link = await self._start(gateway, ctx)
        handshake_era = ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        raise UrlElicitationRequiredError(
            [
                ElicitRequestURLParams(
                    message=(
                        "Link this MCP server to your Killa Tamata account: open the page and "
                        f"confirm the code {link.user_code}. Then call the tool again."
                    ),
                    url=link.url,
                    # The id pairs the later completion notice with this offer; the 2026-07-28
                    # era has no such notice and no id.
                    elicitation_id=link.elicitation_id if handshake_era else None,
                )
            ],
            message=f"Sign-in required: open {link.url} and confirm the code {link.user_code}.",
        )

    async def aclose(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    async def _start(self, gateway: GatewayClient, ctx: Context[Any]) -> PendingLink:
        started = await gateway.device_link_start(
            key_label=self.key_label, client_name=user_agent("killa-mcp")
        )
        link = PendingLink(
            device_code=started["deviceCode"],
            user_code=started["userCode"],
            url=started["verificationUrlComplete"],
            elicitation_id=uuid.uuid4().hex,
            interval=float(started["interval"]),
            deadline=time.monotonic() + float(started["expiresIn"]),
        )
        await self.aclose()  # a poll of an expired link, if any
        self._pending = link
        # Not in the request's task group: the poll outlives the call that started it.
        self._poller = asyncio.get_running_loop().create_task(
            self._poll(gateway, link, ctx), name="killa-device-link-poll"
        )
        return link

    async def _poll(self, gateway: GatewayClient, link: PendingLink, ctx: Context[Any]) -> None:
        """`killa login`'s wait for approval, in the background."""
        interval = link.interval
        try:
            while not link.expired:
                await anyio.sleep(interval)
                try:
                    polled = await gateway.device_link_poll(link.device_code)
                except GatewayCallError as exc:
                    if exc.status == 0 or exc.status >= 500:
                        continue  # the gateway is away for now: keep trying until expiry
                    logger.warning("device link refused: %s", exc)
                    return
                match polled["status"]:
                    case "approved":
                        credentials = approved_credentials(self.api_url, polled)
                        await anyio.to_thread.run_sync(save_credentials, credentials)
                        await self._tell_client(ctx, link)
                        return
                    case "pending" | "slow_down":
                        interval = float(polled["interval"])
                    case status:  # denied, expired
                        logger.warning("device link %s: no key stored", status)
                        return
        finally:
            if self._pending is link:
                self._pending = None

    async def _tell_client(self, ctx: Context[Any], link: PendingLink) -> None:
        """Say the elicitation is complete, where the era has a channel for it (best effort)."""
        if ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
            return
        try:
            await ctx.session.send_elicit_complete(link.elicitation_id)
        except (MCPError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            logger.info("could not send elicitation/complete: %r", exc)
