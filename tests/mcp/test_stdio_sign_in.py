"""`killa mcp` with no key at all, against a real `killa serve`: a client that declared URL-mode
elicitation is offered the device link (and, once the user approves, the key is stored as `killa
login` stores it); any other client is told to run `killa login`."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from mcp import Client, MCPError, StdioServerParameters, UrlElicitationRequiredError
from mcp.client.session import ClientRequestContext
from mcp_types import (
    URL_ELICITATION_REQUIRED,
    ElicitCompleteNotification,
    ElicitRequestParams,
    ElicitRequestURLParams,
    ElicitResult,
    ServerNotification,
)

from tests.mcp.conftest import ERAS, KILLA, LiveGateway, error_text, structured

pytestmark = pytest.mark.slow


def signed_out(live: LiveGateway, config: Path) -> StdioServerParameters:
    """`killa mcp` with no KILLA_API_KEY and its own, empty config dir."""
    return StdioServerParameters(
        command=KILLA, args=["mcp"], env={**live.env, "XDG_CONFIG_HOME": str(config)}
    )


async def open_urls(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    """Declares elicitation (form and URL mode, as the SDK's client does) to the server."""
    return ElicitResult(action="accept")


async def offered_link(session: Client) -> ElicitRequestURLParams:
    with pytest.raises(MCPError) as raised:
        await session.call_tool("balance_get", {})
    assert raised.value.error.code == URL_ELICITATION_REQUIRED
    (offer,) = UrlElicitationRequiredError.from_error(raised.value.error).elicitations
    return offer


def decide(live: LiveGateway, user_code: str, decision: str) -> None:
    """What the person does on the approval page, signed in as the live account."""
    response = httpx.post(
        f"{live.url}/api/v1/device/link/approve",
        json={"userCode": user_code, "decision": decision},
        headers={"Authorization": f"Bearer {live.api_key}"},
    )
    assert response.status_code == 200, response.text


async def stored_credentials(config: Path, *, within: float = 20) -> dict[str, Any]:
    path = config / "killa" / "credentials.json"
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, "the approved key was never stored"
        await anyio.sleep(0.1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored: dict[str, Any] = json.loads(path.read_text())
    return stored


@pytest.mark.parametrize("era", list(ERAS))
async def test_a_client_that_opens_urls_is_offered_the_device_link(
    live_gateway: LiveGateway, tmp_path: Path, era: str
) -> None:
    config = tmp_path / "config"
    completed: list[str] = []

    async def on_message(message: ServerNotification | Exception) -> None:
        if isinstance(message, ElicitCompleteNotification):
            completed.append(str(message.params.elicitation_id))

    async with Client(
        signed_out(live_gateway, config),
        mode=era,
        elicitation_callback=open_urls,
        message_handler=on_message,
    ) as session:
        assert session.protocol_version == ERAS[era]
        offer = await offered_link(session)
        assert offer.mode == "url"
        assert offer.url.startswith(f"{live_gateway.url}/device")
        (user_code,) = parse_qs(urlsplit(offer.url).query)["code"]
        assert user_code in offer.message
        # Waiting for approval: the next call offers the same link, not a new one.
        assert (await offered_link(session)).url == offer.url

        await anyio.to_thread.run_sync(decide, live_gateway, user_code, "approve")
        stored = await stored_credentials(config)
        assert stored["apiUrl"] == live_gateway.url
        assert stored["accountEmail"] == "live@example.com"
        assert stored["apiKey"].startswith("kt_live_")

        balance = structured(await session.call_tool("balance_get", {}))
        assert balance["usdBalanceMicros"] > 0
        if era == "legacy":  # the handshake era has a channel to say the sign-in is done
            assert completed == [offer.elicitation_id]
    # The key is the one `killa login` would have stored: `killa whoami` uses it.
    whoami = live_gateway.killa("whoami", env={"XDG_CONFIG_HOME": str(config)})
    assert "live@example.com" in whoami


async def test_a_denied_link_stores_nothing_and_the_next_call_offers_a_new_one(
    live_gateway: LiveGateway, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    async with Client(signed_out(live_gateway, config), elicitation_callback=open_urls) as session:
        first = await offered_link(session)
        (user_code,) = parse_qs(urlsplit(first.url).query)["code"]
        await anyio.to_thread.run_sync(decide, live_gateway, user_code, "deny")
        deadline = time.monotonic() + 20
        while (second := await offered_link(session)).url == first.url:
            assert time.monotonic() < deadline, "the denied link was offered forever"
            await anyio.sleep(0.2)
    assert not (config / "killa" / "credentials.json").exists()
    assert second.url != first.url


@pytest.mark.parametrize("era", list(ERAS))
async def test_a_client_without_url_elicitation_is_told_to_run_killa_login(
    live_gateway: LiveGateway, tmp_path: Path, era: str
) -> None:
    config = tmp_path / "config"
    async with Client(signed_out(live_gateway, config), mode=era) as session:
        message = error_text(await session.call_tool("balance_get", {}))
        # Free tools need no key at all.
        assert structured(await session.call_tool("packages_list", {}))["packages"]
    assert "killa login" in message
    assert not (config / "killa").exists()
