"""WebSocket limits against hostile or slow clients, over real sockets on 127.0.0.1.

* A frame declaring more than ``--ws-max-size`` is refused (1009) on its header, before its
  payload is buffered.
* permessage-deflate (RFC 7692) in the variants a client may negotiate, with fragmented and large
  messages, keeps the input held per connection bounded; a compression bomb is refused (1009)
  by its inflated size.
* A handshake that never completes is timed out.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from wsproto.events import CloseConnection

from server.sansio.ws_frames import WebSocketConnection
from server.types import Receive, Scope, Send
from tests.support.live import serve
from tests.support.ws import (
    Echo,
    close_writer,
    frame,
    frame_header,
    raw_open,
    request,
    response_header,
    server_events,
)

MASK = b"\x01\x02\x03\x04"


@pytest.fixture
def peak(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The most input any WebSocket connection held (``WebSocketConnection.buffered``), sampled
    after every socket read and every parsed event."""
    seen = [0]
    receive = WebSocketConnection.receive_data
    next_event = WebSocketConnection.next_event

    def receive_data(self: WebSocketConnection, data: bytes) -> None:
        receive(self, data)
        seen[0] = max(seen[0], self.buffered)

    def next_event_sampled(self: WebSocketConnection) -> Any:
        seen[0] = max(seen[0], self.buffered)
        return next_event(self)

    monkeypatch.setattr(WebSocketConnection, "receive_data", receive_data)
    monkeypatch.setattr(WebSocketConnection, "next_event", next_event_sampled)
    yield seen


async def read_close(reader: asyncio.StreamReader) -> CloseConnection:
    got = await asyncio.wait_for(reader.read(), 5)
    events = server_events(got)
    assert events and isinstance(events[-1], CloseConnection), events
    return events[-1]


# ---------------------------------------------------------------------- declared frame length


@pytest.mark.parametrize(
    ("max_size", "first", "length", "prefix"),
    [
        pytest.param(None, 0x82, 100 * 1024 * 1024, b"", id="100MiB-64bit"),
        pytest.param(1024, 0x81, 60_000, b"", id="16bit-over-small-limit"),
        pytest.param(1024, 0x01, 2048, b"", id="first-fragment"),
        pytest.param(1024, 0x80, 1 << 40, frame(0x01, b"ab"), id="continuation"),
        pytest.param(None, 0x82, (1 << 63) - 1, frame(0x89, b"ping"), id="after-a-ping"),
    ],
)
@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-by-byte-header"])
async def test_frame_longer_than_max_size_is_1009_on_its_header(
    peak: list[int], max_size: int | None, first: int, length: int, prefix: bytes, split: bool
) -> None:
    app = Echo()
    options: dict[str, Any] = {"ws_ping_interval": None}
    if max_size is not None:
        options["ws_max_size"] = max_size
    async with serve(app, **options) as srv:
        reader, writer, _ = await raw_open(srv)
        head = frame_header(first, length) + MASK
        writer.write(prefix)
        if split:
            for byte in head:
                writer.write(bytes((byte,)))
                await writer.drain()
                await asyncio.sleep(0)
        else:
            writer.write(head)
        writer.write(os.urandom(1024))  # a little of the payload, never the rest
        close = await read_close(reader)
        await close_writer(writer)
        assert close.code == 1009
        await asyncio.wait_for(app.disconnected.wait(), 5)
        assert app.disconnects[0]["code"] == 1009
    # Nothing of the refused frame's payload was held: at most the small frames before it
    # and the 1 KiB that followed its header on the wire.
    assert peak[0] <= 2048, peak[0]


async def test_frames_up_to_max_size_still_pass(peak: list[int]) -> None:
    """The header check follows frame boundaries: frames of exactly max_size and many small
    ones in one read are delivered; the check never misreads payload bytes as a header."""
    got: list[bytes] = []
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while len(got) < 4:
            message = await receive()
            got.append(message["bytes"])
        done.set()
        await receive()

    async with serve(app, ws_ping_interval=None, ws_max_size=70_000) as srv:
        reader, writer, _ = await raw_open(srv)
        # Payloads that look like frame headers declaring huge lengths.
        fake = b"\x82\xff" + b"\xff" * 8
        big = fake * 7000  # 70,000 bytes: exactly the limit
        data = frame(0x82, big) + frame(0x82, fake) + frame(0x02, fake) + frame(0x80, b"z")
        data += frame(0x82, b"")
        for i in range(0, len(data), 777):  # arbitrary read boundaries
            writer.write(data[i : i + 777])
        await asyncio.wait_for(done.wait(), 5)
        assert got == [big, fake, fake + b"z", b""]
        writer.write(frame(0x88, b"\x03\xe8"))
        assert (await read_close(reader)).code == 1000
        await close_writer(writer)


# --------------------------------------------------------------------------- permessage-deflate

DEFLATE_VARIANTS: dict[str, Callable[[], ClientPerMessageDeflateFactory]] = {
    "default": lambda: ClientPerMessageDeflateFactory(),
    "no-context-takeover-both": lambda: ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True
    ),
    "server-no-context-takeover": lambda: ClientPerMessageDeflateFactory(
        server_no_context_takeover=True
    ),
    "client-no-context-takeover": lambda: ClientPerMessageDeflateFactory(
        client_no_context_takeover=True
    ),
    "server-window-9": lambda: ClientPerMessageDeflateFactory(server_max_window_bits=9),
    "client-window-9": lambda: ClientPerMessageDeflateFactory(client_max_window_bits=9),
    "windows-12-10": lambda: ClientPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=10
    ),
    "windows-15": lambda: ClientPerMessageDeflateFactory(
        server_max_window_bits=15, client_max_window_bits=15
    ),
}

MAX_SIZE = 1024 * 1024


@pytest.mark.parametrize("variant", sorted(DEFLATE_VARIANTS))
async def test_deflate_variants_fragmented_and_large(peak: list[int], variant: str) -> None:
    """Autobahn-style (sections 12/13): text and binary, small, fragmented, large compressible
    and large incompressible messages echo back intact, several in a row (context takeover),
    and the input held per connection stays within ws_max_size plus one read slice."""
    app = Echo()
    random_block = os.urandom(300 * 1024)
    messages: list[Any] = [
        "hello",
        b"\x00\x01" * 10,
        "compress me please " * 3000,
        ("x" * 1000 + "y" * 1000) * 400,  # 800 kB, compresses well
        random_block,  # incompressible: the compressed frame is a little longer than this
        "é" * 100_000,
    ]
    async with (
        serve(app, ws_per_message_deflate=True, ws_ping_interval=None, ws_max_size=MAX_SIZE) as srv,
        connect(
            srv.ws_url,
            proxy=None,
            compression=None,
            extensions=[DEFLATE_VARIANTS[variant]()],
            ping_interval=None,
            max_size=None,
        ) as ws,
    ):
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        for _ in range(2):
            for message in messages:
                await ws.send(message)
                assert await ws.recv() == message
            # Fragmented: the client sends each piece as its own (compressed) frame.
            await ws.send([f"frag-{i} " * 50 for i in range(40)])
            assert await ws.recv() == "".join(f"frag-{i} " * 50 for i in range(40))
            await ws.send([random_block[i : i + 4000] for i in range(0, 200_000, 4000)])
            assert await ws.recv() == random_block[:200_000]
    assert peak[0] <= MAX_SIZE + 256 * 1024, peak[0]


def _deflated(data: bytes, pieces: int = 1) -> list[bytes]:
    """``data`` as a raw-deflate stream (RFC 7692 §7.2.1), cut into ``pieces`` sync-flushed
    parts, each without the trailing 00 00 ff ff of the last one removed as the RFC says."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    step = -(-len(data) // pieces)
    out = []
    for i in range(0, len(data), step):
        out.append(comp.compress(data[i : i + step]) + comp.flush(zlib.Z_SYNC_FLUSH))
    out[-1] = out[-1][:-4]
    return out


@pytest.mark.parametrize("pieces", [1, 40], ids=["one-frame", "fragmented"])
async def test_decompression_bomb_is_1009_by_inflated_size(peak: list[int], pieces: int) -> None:
    """Tens of KiB on the wire that inflate to 50 MiB: refused with 1009 once the inflated size
    passes ws_max_size, holding at most ws_max_size plus one inflated read slice."""
    app = Echo()
    max_size = 64 * 1024
    async with serve(
        app, ws_per_message_deflate=True, ws_max_size=max_size, ws_ping_interval=None
    ) as srv:
        reader, writer, head = await raw_open(
            srv, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
        assert response_header(head, b"sec-websocket-extensions") is not None
        parts = _deflated(b"\x00" * (50 * 1024 * 1024), pieces)
        assert max(map(len, parts)) < max_size  # every frame header is within the limit
        for i, part in enumerate(parts):
            first = (0x40 if i == 0 else 0) | (0x80 if i == len(parts) - 1 else 0)
            first |= 0x02 if i == 0 else 0x00
            writer.write(frame(first, part))
        close = await read_close(reader)
        await close_writer(writer)
        assert close.code == 1009
        await asyncio.wait_for(app.disconnected.wait(), 5)
        assert app.disconnects[0]["code"] == 1009
    # One slice of compressed input inflates to at most ~4 MiB (deflate's ~1032:1 ratio).
    assert peak[0] <= max_size + 5 * 1024 * 1024, peak[0]


# ------------------------------------------------------------------------- handshake timeouts


async def test_handshake_head_that_trickles_is_408() -> None:
    """The upgrade request is an HTTP request until its head is complete: the request-head
    timeout (--timeout-request-header) bounds it, however slowly the bytes come."""
    app = Echo()
    async with serve(app, timeout_request_header=0.5, ws_ping_interval=None) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        data = request()

        async def trickle() -> None:
            for byte in data[:-2]:  # never the final CRLF
                writer.write(bytes((byte,)))
                await asyncio.sleep(0.02)

        sender = asyncio.ensure_future(trickle())
        try:
            got = await asyncio.wait_for(reader.read(), 5)
        finally:
            sender.cancel()
        await close_writer(writer)
    assert got.startswith(b"HTTP/1.1 408 ")
    assert not app.disconnects  # the app never saw a connection


async def test_handshake_head_that_stalls_is_408() -> None:
    app = Echo()
    async with serve(app, timeout_request_header=0.3, ws_ping_interval=None) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        writer.write(request()[:40])
        got = await asyncio.wait_for(reader.read(), 5)
        await close_writer(writer)
    assert got.startswith(b"HTTP/1.1 408 ")


async def test_handshake_the_app_never_answers_is_403_after_connect_timeout() -> None:
    """After the head, the handshake waits on the app: --ws-connect-timeout bounds that."""
    cancelled = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await asyncio.Event().wait()  # neither accept nor close
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serve(app, ws_connect_timeout=0.3, ws_ping_interval=None) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        writer.write(request())
        got = await asyncio.wait_for(reader.read(), 5)
        await close_writer(writer)
        await asyncio.wait_for(cancelled.wait(), 5)
    assert got.startswith(b"HTTP/1.1 403 ")
