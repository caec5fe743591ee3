"""`JsonFirstResponses`: answer a request as one JSON object unless its answer really streams.

Streamable HTTP lets a server answer a JSON-RPC request either with one `application/json`
object or with a `text/event-stream`; clients must accept both. The SDK's 2025-era (handshake)
transport always streams, and the SDK's client reads that stream up to the response and then
closes it unfinished, which closes the TCP connection. Profiled under `benchmarks/mcp.py`, every
2025-era tool call so paid for a new connection (a DNS lookup in a worker thread, a connect, an
accept) and the SSE framing and parse: the SDK's client spent 2.4 ms of CPU a call against 1.5 ms
in the 2026-07-28 era, whose SDK transport answers in JSON until a handler emits something.

This does the same for every era, on the wire: the response's SSE headers are held back until
its first event. If that event is the JSON-RPC response itself, it goes out as `application/json`
(same status, same `Mcp-Session-Id`), and the connection stays open for the next call. Anything
else first (a progress notification, a request to the client such as an elicitation, the
keep-alive ping the stream sends after 15 quiet seconds) releases the stream unchanged, so
progress and elicitation work exactly as before.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SSE = b"text/event-stream"
# SSE-only headers that do not describe a JSON body.
_DROPPED = {b"content-type", b"cache-control", b"connection", b"x-accel-buffering"}


class JsonFirstResponses:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the SSE response start, not sent yet
        passing = False  # the answer streams: everything goes out as the app sends it
        answered = False  # the answer went out as JSON: the stream's end has no wire

        async def send_json_first(message: Message) -> None:
            nonlocal held, passing, answered
            if passing:
                await send(message)
            elif answered:
                return
            elif message["type"] == "http.response.start" and _is_sse(message):
                held = message
            elif held is None:  # not a stream at all (JSON already, 202, an error)
                passing = True
                await send(message)
            elif (answer := _lone_response(message)) is not None:
                answered = True
                await send(_json_start(held, len(answer)))
                await send({"type": "http.response.body", "body": answer, "more_body": False})
            else:
                passing = True
                await send(held)
                await send(message)

        await self.app(scope, receive, send_json_first)
        if held is not None and not (passing or answered):  # a stream that ended with no event
            await send(held)
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _is_sse(start: Message) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(_SSE)
        for name, value in start.get("headers", [])
    )


def _lone_response(message: Message) -> bytes | None:
    """The JSON of `message` when it is one SSE event holding a JSON-RPC response (or error)."""
    if message["type"] != "http.response.body":
        return None
    data: bytes | None = None
    for line in message.get("body", b"").splitlines():
        field, _, value = line.partition(b":")
        if field == b"data" and data is None:
            data = value.removeprefix(b" ")
        elif not line or (field == b"event" and value.strip() == b"message"):
            continue
        else:  # an id (resumable stream), a comment (ping), a second data line
            return None
    if data is None:
        return None
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    is_response = (
        isinstance(parsed, dict)
        and "method" not in parsed
        and parsed.get("id") is not None
        and ("result" in parsed or "error" in parsed)
    )
    return data if is_response else None


def _json_start(sse_start: Message, length: int) -> Message:
    headers = [(k, v) for k, v in sse_start.get("headers", []) if k.lower() not in _DROPPED]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    return {"type": "http.response.start", "status": sse_start["status"], "headers": headers}
