"""The MCP Inspector CLI (a client we did not write, speaking the 2025-11-25 handshake) against
`killa mcp` on stdio and the gateway's `/mcp`: list the tools, then run a job."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.jobs.conftest import MediaHost
from tests.mcp.conftest import KILLA, LiveGateway

# Pinned: a bare `npx @modelcontextprotocol/inspector` resolves to 0.15 on Node 20 (no --header).
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed"),
]


def inspector(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(
        ["npx", "-y", INSPECTOR, "--cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert ran.returncode == 0, ran.stderr[-2000:]
    return ran


def answer(ran: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(ran.stdout)
    return body


def targets(live: LiveGateway) -> dict[str, list[str]]:
    return {
        "stdio": [
            KILLA,
            "mcp",
            "-e",
            f"KILLA_API_URL={live.url}",
            "-e",
            f"KILLA_API_KEY={live.api_key}",
            "-e",
            f"XDG_CONFIG_HOME={live.env['XDG_CONFIG_HOME']}",
        ],
        "http": [
            f"{live.url}/mcp",
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {live.api_key}",
        ],
    }


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_inspector_lists_the_tools_and_runs_a_job(
    live_gateway: LiveGateway, media_host: MediaHost, transport: str
) -> None:
    target = targets(live_gateway)[transport]
    listed = answer(inspector(*target, "--method", "tools/list", "--strict"))
    names = {tool["name"] for tool in listed["tools"]}
    assert {"video_combine", "cost_quote", "job_wait", "balance_get"} <= names

    clips = json.dumps([media_host.url("red.mp4"), media_host.url("blue.mp4")])
    called = answer(
        inspector(
            *target,
            "--method",
            "tools/call",
            "--tool-name",
            "video_combine",
            "--tool-arg",
            f"videoUrls={clips}",
            "frameRate=24",
            "wait=true",
        )
    )
    assert called.get("isError") is not True, called
    job = called["structuredContent"]
    assert job["status"] == "succeeded"
    links = [block for block in called["content"] if block["type"] == "resource_link"]
    assert [link["uri"] for link in links] == [item["url"] for item in job["outputs"]]


def test_inspector_without_a_key_is_refused_over_http(live_gateway: LiveGateway) -> None:
    # Without a key the Inspector answers our 401 by starting OAuth; in CI it may only fail.
    ran = inspector(
        f"{live_gateway.url}/mcp",
        "--transport",
        "http",
        "--stored-auth-only",
        "--method",
        "tools/list",
        check=False,
    )
    assert ran.returncode != 0
    error = json.loads(ran.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "auth_required", error
    assert "invalid_token" in error["message"]
