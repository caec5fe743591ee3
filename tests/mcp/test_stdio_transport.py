"""`killa mcp`'s stdio transport (server/stdio.py): line framing on the event loop over pipes, and
the real process answering raw JSON-RPC lines, bad ones included, over pipes and (through the
SDK's transport) from a file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCRequest

from server.stdio import LineReceiver, LineSender
from tests.mcp.conftest import INITIALIZE, KILLA, LiveGateway

INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
PACKAGES = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "packages_list", "arguments": {}},
}


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


async def test_lines_become_messages_and_bad_lines_become_errors() -> None:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    reader = asyncio.StreamReader(limit=1024)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
    )
    os.write(write_fd, line(INITIALIZE) + b"not json\n" + b"x" * 5000 + b"\n" + line(INITIALIZED))
    os.close(write_fd)
    async with LineReceiver(reader, transport) as receiver:
        items = [item async for item in receiver]
    first, garbage, oversized, last = items
    assert isinstance(first, SessionMessage)
    assert isinstance(first.message, JSONRPCRequest)
    assert first.message.method == "initialize"
    assert isinstance(garbage, ValueError)
    assert isinstance(oversized, ValueError)  # skipped whole, and the stream goes on
    assert isinstance(last, SessionMessage)
    assert isinstance(last.message, JSONRPCNotification)


async def test_each_message_is_one_line() -> None:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
        os.fdopen(write_fd, "wb", buffering=0),
    )
    sender = LineSender(asyncio.StreamWriter(transport, protocol, None, loop))
    notice = JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"a": 1})
    async with sender:
        await asyncio.gather(*(sender.send(SessionMessage(notice)) for _ in range(3)))
    with os.fdopen(read_fd, "rb") as pipe:
        lines = pipe.read().splitlines()
    assert [json.loads(text)["method"] for text in lines] == ["notifications/progress"] * 3


def answers_over_pipes(live: LiveGateway, *messages: bytes, until: int) -> dict[int, Any]:
    """Write `messages` to `killa mcp`, read its answers up to the one with id `until`."""
    answers: dict[int, Any] = {}
    with subprocess.Popen(
        [KILLA, "mcp"], env=live.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(b"".join(messages))
        process.stdin.flush()
        while until not in answers:
            text = process.stdout.readline()
            assert text, "killa mcp closed stdout"
            answer = json.loads(text)
            answers[answer.get("id")] = answer
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    return answers


@pytest.mark.slow
def test_killa_mcp_answers_over_pipes_after_a_bad_line(live_gateway: LiveGateway) -> None:
    answers = answers_over_pipes(
        live_gateway, b"{oops\n", line(INITIALIZE), line(INITIALIZED), line(PACKAGES), until=2
    )
    assert answers[1]["result"]["serverInfo"]["name"] == "killa-tamata"
    assert answers[2]["result"]["structuredContent"]["packages"]


@pytest.mark.slow
def test_killa_mcp_reads_a_file_through_the_sdk_transport(
    live_gateway: LiveGateway, tmp_path: Path
) -> None:
    wire = tmp_path / "wire.jsonl"
    wire.write_bytes(line(INITIALIZE))
    with wire.open("rb") as stdin:
        ran = subprocess.run(
            [KILLA, "mcp"], env=live_gateway.env, stdin=stdin, capture_output=True, timeout=60
        )
    assert ran.returncode == 0, ran.stderr.decode()
    (answer,) = [json.loads(text) for text in ran.stdout.splitlines()]
    assert answer["result"]["serverInfo"]["name"] == "killa-tamata"
