"""Raw WebSocket client scaffolding for tests: hand-built frames, a raw handshake, an echo app.

For bytes no real client would send (bad framing, lengths that lie, compression bombs); the
well-behaved cases use the ``websockets`` client instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from typing import Any

from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import CloseConnection
from wsproto.extensions import PerMessageDeflate

from server.types import Message, Receive, Scope, Send
from tests.support.live import LiveServer


def frame_header(first: int, length: int, *, mask: bool = True) -> bytes:
    """A client frame header (RFC 6455 §5.2) declaring ``length``; the mask key is not included."""
    bit = 0x80 if mask else 0
    if length < 126:
        return bytes((first, bit | length))
    if length < 65536:
        return struct.pack("!BBH", first, bit | 126, length)
    return struct.pack("!BBQ", first, bit | 127, length)


def frame(first: int, payload: bytes, *, mask: bool = True) -> bytes:
    """A client frame with any first byte (FIN/RSV/opcode), masked unless told otherwise."""
    head = frame_header(first, len(payload), mask=mask)
    if not mask:
        return head + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def request(extra: bytes = b"", path: bytes = b"/raw") -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )


async def raw_open(
    srv: LiveServer, extra: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    writer.write(request(extra))
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer, head


def server_events(data: bytes) -> list[Any]:
    c = WsprotoConnection(ConnectionType.CLIENT)
    c.receive_data(data)
    return list(c.events())


def deflate_client(response_ext: str) -> WsprotoConnection:
    ext = PerMessageDeflate()
    ext.finalize(response_ext)
    return WsprotoConnection(ConnectionType.CLIENT, extensions=[ext])


def header_lines(head: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out.append((name.strip().lower(), value.strip()))
    return out


def response_header(head: bytes, name: bytes) -> bytes | None:
    for n, v in header_lines(head):
        if n == name:
            return v
    return None


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


class Echo:
    """Accepts, echoes, records the disconnect (and any error the server raised into it)."""

    def __init__(self) -> None:
        self.disconnects: list[Message] = []
        self.disconnected = asyncio.Event()
        self.errors: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message)
                self.disconnected.set()
                return
            await send(
                {
                    "type": "websocket.send",
                    "text": message.get("text"),
                    "bytes": message.get("bytes"),
                }
            )


async def expect_failure(srv: LiveServer, app: Echo, data: bytes, code: int) -> None:
    """Send ``data`` after the handshake; the server must answer Close(code) and tell the app."""
    reader, writer, _ = await raw_open(srv)
    writer.write(data)
    got = await asyncio.wait_for(reader.read(), 5)
    await close_writer(writer)
    events = server_events(got)
    assert events and isinstance(events[-1], CloseConnection), events
    assert events[-1].code == code, events
    await asyncio.wait_for(app.disconnected.wait(), 5)
    assert app.disconnects[0]["code"] == code
