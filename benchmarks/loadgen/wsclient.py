"""A minimal, fast WebSocket client protocol for load generation (RFC 6455, client side).

Speed matters more than generality here, because the load generator must never be the
bottleneck: frames we send are built once and reused (the same masked bytes every time), and
received frames are parsed straight out of one ``bytearray`` without per-frame objects.

Not a general client: no extensions, no subprotocols, no fragmentation on send.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Callable
from typing import cast

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
# RFC 6455 §4.1 wants a random key per connection; servers cannot tell, and a fixed key lets us
# check Sec-WebSocket-Accept with one precomputed value.
KEY = b"YmVuY2htYXJrLWtleS0wMQ=="
ACCEPT = base64.b64encode(hashlib.sha1(KEY + GUID).digest())

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# §5.3 requires client frames to be masked with an unpredictable key; a fixed key is harmless for
# a load generator talking to 127.0.0.1 and lets frames be pre-built once.
MASK = b"\x5a\x3c\x96\xe1"


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame (FIN set, masked) carrying ``payload``; RFC 6455 §5.2."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + masked


CLOSE_NORMAL = masked_frame(OP_CLOSE, struct.pack("!H", 1000))


def handshake_request(host: str, port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()


class HandshakeError(Exception):
    pass


class WSClient(asyncio.Protocol):
    """Calls ``on_message(payload)`` for every complete text/binary message.

    ``opened`` resolves after a valid 101 response; ``closed`` resolves when the TCP connection
    is gone (and records whether the server closed first).
    """

    def __init__(
        self,
        request: bytes,
        on_message: Callable[[WSClient, bytes], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.request = request
        self.on_message = on_message
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.is_open = False
        self.fragments: list[bytes] = []
        self.close_sent = False
        self.protocol_errors = 0
        # Set when the server closed: its close code (1005 if it sent none, 1006 if TCP died).
        self.close_code: int | None = None
        # Free slots for the load generator's own per-connection bookkeeping.
        self.sent_at = 0.0
        self.count = 0
        self.last_seq = -1

    # -- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.is_open and not self.close_sent and self.close_code is None:
            self.close_code = 1006
        self.is_open = False
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(f"connection lost during handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.is_open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._fail("handshake response head too large")
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            if not head.startswith(b"http/1.1 101"):
                self._fail("handshake refused: " + head.split(b"\r\n", 1)[0].decode("latin-1"))
                return
            if b"sec-websocket-accept: " + ACCEPT.lower() not in head:
                self._fail("bad Sec-WebSocket-Accept")
                return
            self.is_open = True
            self.opened.set_result(None)
        self._parse_frames()

    # -- frames ------------------------------------------------------------------------------
    def _parse_frames(self) -> None:
        buf = self.buf
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1]
            if length & 0x80:
                # §5.1: a client MUST close the connection on a masked server frame.
                self._fail("server sent a masked frame")
                return
            header = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                header = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                header = 10
            end = pos + header + length
            if end > size:
                break
            payload = bytes(buf[pos + header : end])
            pos = end
            opcode = b0 & 0x0F
            if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                if b0 & 0x80:
                    if self.fragments:
                        self.fragments.append(payload)
                        payload = b"".join(self.fragments)
                        self.fragments.clear()
                    self.on_message(self, payload)
                else:
                    self.fragments.append(payload)
            elif opcode == OP_PING:
                if self.transport is not None:
                    self.transport.write(masked_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                if self.close_code is None:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                # §5.5.1: answer a close with a close, then the server closes TCP.
                if not self.close_sent and self.transport is not None:
                    self.transport.write(masked_frame(OP_CLOSE, payload[:2]))
                    self.close_sent = True
                self.is_open = False
            elif opcode != OP_PONG:
                self._fail(f"unknown opcode {opcode}")
                return
        if pos:
            del buf[:pos]

    def _fail(self, reason: str) -> None:
        self.protocol_errors += 1
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(reason))
        if self.transport is not None:
            self.transport.abort()

    # -- sending -----------------------------------------------------------------------------
    def send_raw(self, frame: bytes) -> None:
        if self.transport is not None and self.is_open:
            self.transport.write(frame)

    def start_close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.is_open and not self.close_sent:
            self.transport.write(CLOSE_NORMAL)
            self.close_sent = True
        self.is_open = False


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: Callable[[WSClient, bytes], None],
    limit_s: float,
) -> WSClient:
    loop = asyncio.get_running_loop()
    request = handshake_request(host, port, path)
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WSClient(request, on_message, loop), host, port), limit_s
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.opened), limit_s)
    except BaseException:
        if client.transport is not None:
            client.transport.abort()
        raise
    return client


async def connect_many(
    host: str,
    port: int,
    path: str,
    count: int,
    on_message: Callable[[WSClient, bytes], None],
    *,
    # Twisted (Daphne) listens with a backlog of 50: more handshakes in flight overflow its
    # accept queue and the kernel drops SYNs (1 s retransmits), so every server gets 50.
    parallel: int = 50,
    limit_s: float = 10.0,
) -> tuple[list[WSClient], list[str]]:
    """Open ``count`` connections, at most ``parallel`` handshakes in flight; returns the
    clients that opened and one error string per connection that did not."""
    clients: list[WSClient] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with gate:
            try:
                clients.append(await connect(host, port, path, on_message, limit_s))
            except (OSError, TimeoutError, HandshakeError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one() for _ in range(count)))
    return clients, errors


def close_codes(clients: list[WSClient]) -> dict[str, int]:
    """How many connections the server closed, by close code (before we started closing)."""
    counts: dict[str, int] = {}
    for c in clients:
        if c.close_code is not None:
            counts[str(c.close_code)] = counts.get(str(c.close_code), 0) + 1
    return counts


async def close_all(clients: list[WSClient], limit_s: float = 5.0) -> None:
    """Close handshake for everyone, then drop whatever did not finish within ``limit_s``."""
    for c in clients:
        c.start_close()
    pending = [c.closed for c in clients if not c.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=limit_s)
    for c in clients:
        if c.transport is not None and not c.transport.is_closing():
            c.transport.abort()
    left = [c.closed for c in clients if not c.closed.done()]
    if left:
        await asyncio.wait(left, timeout=1.0)
