"""`JsonFirstResponses` on the wire: a stream whose first event is the answer goes out as JSON;
anything that really streams (progress, a request to the client, a keep-alive ping) goes out
exactly as the SDK sent it. (The real SDK behind it, progress included, runs in
test_transports.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from server.json_first import JsonFirstResponses

SSE_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"cache-control", b"no-store"),
        (b"connection", b"keep-alive"),
        (b"content-type", b"text/event-stream"),
        (b"mcp-session-id", b"abc123"),
        (b"x-accel-buffering", b"no"),
    ],
}
RESPONSE = {"jsonrpc": "2.0", "id": 7, "result": {"content": [], "isError": False}}
PROGRESS = {
    "jsonrpc": "2.0",
    "method": "notifications/progress",
    "params": {"progressToken": 1, "progress": 50},
}


def event(message: dict[str, Any], *, event_id: str | None = None) -> bytes:
    """One SSE frame as sse-starlette (the SDK's SSE response) writes it."""
    lines = ([f"id: {event_id}"] if event_id else []) + ["event: message"]
    return ("\r\n".join([*lines, f"data: {json.dumps(message)}"]) + "\r\n\r\n").encode()


def streaming(*frames: bytes, start: Message = SSE_START) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        for frame in frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def sent(app: Any, method: str = "POST") -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await JsonFirstResponses(app)({"type": "http", "method": method}, receive, send)
    return messages


async def test_an_answer_alone_on_its_stream_goes_out_as_json() -> None:
    start, body = await sent(streaming(event(RESPONSE)))
    headers = dict(start["headers"])
    assert start["status"] == 200
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"mcp-session-id"] == b"abc123"
    assert b"x-accel-buffering" not in headers
    assert int(headers[b"content-length"]) == len(body["body"])
    assert json.loads(body["body"]) == RESPONSE
    assert body["more_body"] is False


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(event(PROGRESS), id="progress"),
        pytest.param(
            event({"jsonrpc": "2.0", "id": 1, "method": "elicitation/create", "params": {}}),
            id="request to the client",
        ),
        pytest.param(b": ping - 2026-01-01 00:00:00\r\n\r\n", id="keep-alive ping"),
        pytest.param(event(RESPONSE, event_id="e1"), id="resumable event"),
    ],
)
async def test_a_stream_that_streams_goes_out_untouched(first: bytes) -> None:
    frames = (first, event(RESPONSE))
    messages = await sent(streaming(*frames))
    assert messages[0] == SSE_START
    assert [m["body"] for m in messages[1:]] == [*frames, b""]


async def test_other_answers_and_methods_pass_through() -> None:
    json_start: Message = {
        "type": "http.response.start",
        "status": 202,
        "headers": [(b"content-type", b"application/json")],
    }
    accepted = await sent(streaming(start=json_start))
    assert accepted[0] == json_start
    standalone = await sent(streaming(event(RESPONSE)), method="GET")
    assert standalone[0] == SSE_START


async def test_a_stream_that_ends_empty_is_still_sent() -> None:
    start, end = await sent(streaming())
    assert start == SSE_START
    assert end == {"type": "http.response.body", "body": b"", "more_body": False}
