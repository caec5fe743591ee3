"""The gateway's `/mcp` in process: bearer keys through the SDK's token verifier, the OAuth
protected-resource metadata, and DNS-rebinding protection. (Whole sessions over a real socket
are in test_transports.py.)"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import Customer
from tests.mcp.conftest import INITIALIZE

METADATA_URL = "https://gateway.test/.well-known/oauth-protected-resource/mcp"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def sse_messages(response: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(line.removeprefix("data:"))
        for line in response.text.splitlines()
        if line.startswith("data:") and line.strip() != "data:"
    ]


async def test_mcp_refuses_a_missing_or_bad_key_with_www_authenticate(
    client: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"Authorization": "Bearer kt_live_nope"}, {"Authorization": "Basic x"}):
        response = await client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'resource_metadata="{METADATA_URL}"' in challenge
        assert response.json()["error"] == "invalid_token"


async def test_protected_resource_metadata_is_served_at_both_well_known_paths(
    client: httpx.AsyncClient,
) -> None:
    suffixed = await client.get("/.well-known/oauth-protected-resource/mcp")
    bare = await client.get("/.well-known/oauth-protected-resource")
    assert suffixed.status_code == bare.status_code == 200
    assert suffixed.json() == bare.json()
    metadata = suffixed.json()
    assert metadata["resource"] == "https://gateway.test/mcp"
    assert metadata["authorization_servers"] == ["https://gateway.test"]
    assert metadata["bearer_methods_supported"] == ["header"]


async def test_a_valid_key_opens_a_session(client: httpx.AsyncClient, customer: Customer) -> None:
    response = await client.post(
        "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **customer.headers}
    )
    assert response.status_code == 200, response.text
    # Nothing streams before the answer, so it comes as one JSON object (server/json_first.py).
    assert response.headers["content-type"] == "application/json"
    assert response.json()["result"]["serverInfo"]["name"] == "killa-tamata"
    assert response.headers["mcp-session-id"]


async def test_foreign_hosts_and_origins_are_refused(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    headers = {**MCP_HEADERS, **customer.headers}
    rebound = await client.post("/mcp", json=INITIALIZE, headers={**headers, "Host": "evil.test"})
    assert rebound.status_code == 421
    foreign = await client.post(
        "/mcp", json=INITIALIZE, headers={**headers, "Origin": "https://evil.test"}
    )
    assert foreign.status_code == 403
    loopback = await client.post(
        "/mcp", json=INITIALIZE, headers={**headers, "Host": "127.0.0.1:8000"}
    )
    assert loopback.status_code == 200


async def test_paths_beside_mcp_keep_the_gateway_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/mcp/elsewhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
