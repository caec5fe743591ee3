"""`killa mcp`'s stdio transport: the SDK's framing (one JSON-RPC message a line) on the event loop.

The SDK's `stdio_server()` reads and writes through `anyio.wrap_file`, so every line read and every
write and flush is a hop to a worker thread and back: three per tool call, each a thread wake-up
and an event-loop wake-up. Measured back to back against a real gateway, they were about 0.4 ms of
the 1.4 ms stdio added to the REST call a tool makes. MCP clients start servers with pipes for
stdin and stdout; this transport registers those pipes with the event loop instead (no threads).
Anything else (a terminal, a file, Windows) goes through the SDK's transport unchanged.

Like the SDK's, it claims fds 0 and 1 while serving: fd 0 reads /dev/null and fd 1 writes to
stderr, so a stray print() or a child process cannot corrupt the protocol; both are restored on
exit.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING, Self

import anyio
import mcp_types
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from backend.closeable import AsyncCloseable

if TYPE_CHECKING:
    # The protocols `Server.run` takes; the SDK does not export them yet.
    from mcp.shared._stream_protocols import ReadStream, WriteStream

# A longer line is skipped and handed on as a parse error (as the SDK's transport hands on a bad
# line), not buffered whole.
MAX_LINE_BYTES = 64 * 1024 * 1024
# How long closing waits for the client to read what is still buffered.
FLUSH_SECONDS = 5.0

StdioStreams = tuple["ReadStream[SessionMessage | Exception]", "WriteStream[SessionMessage]"]


class LineReceiver(AsyncCloseable):
    """The SDK's `ReadStream`: one parsed message (or why a line is not one) per line of stdin."""

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.ReadTransport) -> None:
        self._reader = reader
        self._transport = transport

    async def receive(self) -> SessionMessage | Exception:
        if self._transport.is_closing() and not self._reader.at_eof():
            raise anyio.ClosedResourceError
        try:
            line = await self._reader.readline()
        except ValueError as exc:  # over MAX_LINE_BYTES: the reader dropped it
            return exc
        if not line:
            raise anyio.EndOfStream
        try:
            # Decoded like the SDK's transport does, so invalid UTF-8 is replaced, not refused.
            text = line.decode("utf-8", errors="replace")
            message = mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False)
        except ValueError as exc:  # pydantic's ValidationError included
            return exc
        return SessionMessage(message)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._transport.close()


class LineSender(AsyncCloseable):
    """The SDK's `WriteStream`: each message as one line on stdout.

    `write` puts the whole line in the pipe (or, when the client is slow to read, in the
    transport's buffer) at once, so concurrent senders never interleave; `drain` waits only while
    that buffer is over its high-water mark.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def send(self, item: SessionMessage, /) -> None:
        if self._writer.is_closing():
            raise anyio.ClosedResourceError
        line = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        try:
            self._writer.write(line.encode() + b"\n")
            await self._writer.drain()
        except ConnectionError as exc:  # the client closed its end
            raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        # Flushes what is buffered, for a while: a client that stopped reading cannot take it.
        with suppress(ConnectionError), anyio.move_on_after(FLUSH_SECONDS) as flushing:
            await self._writer.wait_closed()
        if flushing.cancelled_caught:
            self._writer.transport.abort()


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[StdioStreams]:
    """The read and write streams `Server.run` serves a stdio connection over."""
    if sys.platform == "win32" or not (_is_pipe(0) and _is_pipe(1)):
        async with stdio_server() as streams:
            yield streams
        return
    loop = asyncio.get_running_loop()
    with (
        _claimed(0, lambda: os.open(os.devnull, os.O_RDONLY)) as wire_in,
        _claimed(1, lambda: os.dup(2)) as wire_out,
    ):
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
        # Each transport owns (and closes) a duplicate; the claimed descriptor restores the fd.
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(os.dup(wire_in), "rb", buffering=0),
        )
        # asyncio's own recipe for a StreamWriter on a pipe: the protocol brings `drain()`.
        write_transport, write_protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop),
            os.fdopen(os.dup(wire_out), "wb", buffering=0),
        )
        writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
        receiver, sender = LineReceiver(reader, read_transport), LineSender(writer)
        try:
            yield receiver, sender
        finally:
            await receiver.aclose()
            await sender.aclose()


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextmanager
def _claimed(fd: int, open_diversion: Callable[[], int]) -> Iterator[int]:
    """Keep `fd`'s pipe on a private descriptor and point `fd` elsewhere until the block ends."""
    import fcntl  # POSIX only, like this path

    wire = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    try:
        diversion = open_diversion()
        try:
            os.dup2(diversion, fd)
        finally:
            os.close(diversion)
        yield wire
    finally:
        # The event loop made the pipe non-blocking, a flag its other holders share.
        os.set_blocking(wire, True)
        os.dup2(wire, fd)
        os.close(wire)
