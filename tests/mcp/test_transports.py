"""Real MCP sessions over both transports against a real `killa serve` on a loopback port, in
both protocol eras: `killa mcp` on stdio (key from KILLA_API_KEY or `killa login`'s file) and the
gateway's own `/mcp` over streamable HTTP (bearer key)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ResourceLink

from server.login import Credentials, save_credentials
from tests.jobs.conftest import MediaHost
from tests.mcp.conftest import ERAS, KILLA, LiveGateway, error_text, structured

pytestmark = pytest.mark.slow


def stdio(live: LiveGateway, **env: str) -> StdioServerParameters:
    return StdioServerParameters(command=KILLA, args=["mcp"], env={**live.env, **env})


@asynccontextmanager
async def over_http(
    live: LiveGateway, era: str, key: str | None, answers: list[tuple[str, str]] | None = None
) -> AsyncIterator[Client]:
    """A session on `/mcp`; `answers` collects (JSON-RPC method, content type) per request."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def record(response: httpx2.Response) -> None:
        if answers is not None and response.request.method == "POST":
            method = json.loads(response.request.content).get("method", "")
            answers.append((method, response.headers.get("content-type", "")))

    async with (
        httpx2.AsyncClient(headers=headers, timeout=60, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(f"{live.url}/mcp", http_client=http), mode=era) as session,
    ):
        yield session


async def a_job_runs_with_progress_and_its_file_downloads(
    session: Client, media_host: MediaHost
) -> None:
    tools = {tool.name for tool in (await session.list_tools()).tools}
    assert {"video_combine", "cost_quote", "job_wait", "balance_get"} <= tools
    arguments = {"videoUrls": [media_host.url("red.mp4"), media_host.url("blue.mp4")]}
    quote = structured(
        await session.call_tool("cost_quote", {"tool": "video_combine", "arguments": arguments})
    )
    assert quote["affordable"]

    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    result = await session.call_tool(
        "video_combine", {**arguments, "frameRate": 24, "wait": True}, progress_callback=on_progress
    )
    job = structured(result)
    assert job["status"] == "succeeded", job
    assert seen, "progress notifications crossed the transport"
    assert seen[-1] == 100
    (link,) = [block for block in result.content if isinstance(block, ResourceLink)]
    async with httpx.AsyncClient() as http:
        download = await http.get(str(link.uri))
    assert download.status_code == 200
    assert len(download.content) == link.size
    assert link.mime_type == "video/mp4"


@pytest.mark.parametrize("era", list(ERAS))
async def test_stdio_session_runs_a_job_end_to_end(
    live_gateway: LiveGateway, media_host: MediaHost, era: str
) -> None:
    async with Client(stdio(live_gateway, KILLA_API_KEY=live_gateway.api_key), mode=era) as session:
        assert session.protocol_version == ERAS[era]
        assert session.server_info is not None
        assert session.server_info.name == "killa-tamata"
        await a_job_runs_with_progress_and_its_file_downloads(session, media_host)


async def test_stdio_uses_the_key_killa_login_stored(
    live_gateway: LiveGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    save_credentials(Credentials(api_url=live_gateway.url, api_key=live_gateway.api_key))
    env = {k: v for k, v in live_gateway.env.items() if k != "KILLA_API_URL"}
    parameters = StdioServerParameters(
        command=KILLA, args=["mcp"], env={**env, "XDG_CONFIG_HOME": str(tmp_path)}
    )
    async with Client(parameters) as session:
        balance = structured(await session.call_tool("balance_get", {}))
    assert balance["usdBalanceMicros"] > 0


async def test_stdio_without_a_key_tells_the_agent_to_run_killa_login(
    live_gateway: LiveGateway,
) -> None:
    async with Client(stdio(live_gateway)) as session:
        assert len((await session.list_tools()).tools) == 17
        message = error_text(await session.call_tool("balance_get", {}))
    assert "killa login" in message


@pytest.mark.parametrize("era", list(ERAS))
async def test_http_session_with_a_key_runs_a_job_end_to_end(
    live_gateway: LiveGateway, media_host: MediaHost, era: str
) -> None:
    answers: list[tuple[str, str]] = []
    async with over_http(live_gateway, era, live_gateway.api_key, answers) as session:
        assert session.protocol_version == ERAS[era]
        await a_job_runs_with_progress_and_its_file_downloads(session, media_host)
        resource = await session.read_resource("killa://balance")
        assert "usdAvailableMicros" in resource.contents[0].text  # type: ignore[union-attr]
    # Calls that stream nothing are answered in JSON (server/json_first.py); the waiting call's
    # progress came as a stream.
    assert {kind for method, kind in answers if method == "tools/list"} == {"application/json"}
    tool_calls = [kind for method, kind in answers if method == "tools/call"]
    assert tool_calls[0] == "application/json"  # cost_quote
    assert tool_calls[1].startswith("text/event-stream")  # video_combine with wait


@pytest.mark.parametrize("key", [None, "kt_live_not_a_key"])
async def test_http_without_a_valid_key_is_refused(
    live_gateway: LiveGateway, key: str | None
) -> None:
    with pytest.raises(ExceptionGroup) as raised:
        async with over_http(live_gateway, "legacy", key) as session:
            await session.list_tools()
    assert raised.group_contains(MCPError)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{live_gateway.url}/mcp",
            json={},
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]
