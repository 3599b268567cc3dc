"""Hostile or buggy WebSocket peers and applications, over real sockets on 127.0.0.1.

Each test pins one rule of RFC 6455 / RFC 7692 / the ASGI WebSocket spec 2.4 that a hostile or
buggy peer (or application) could otherwise use to crash, hang or bloat the server.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Pong, TextMessage

from server.protocols.websocket import MAX_PENDING_MESSAGES, WebSocketProtocol
from server.types import Message, Receive, Scope, Send
from tests.support.live import LiveServer, serve
from tests.support.polling import eventually
from tests.support.ws import (
    Echo,
    close_writer,
    deflate_client,
    expect_failure,
    frame,
    header_lines,
    raw_open,
    request,
    response_header,
    server_events,
)

# ------------------------------------------------------------------ client protocol violations


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack("!H", 0),
        struct.pack("!H", 999),
        struct.pack("!H", 1004),
        struct.pack("!H", 1005),
        struct.pack("!H", 1006),
        struct.pack("!H", 1015),
        struct.pack("!H", 1016),
        struct.pack("!H", 2999),
        struct.pack("!H", 5000),
        b"\x03",  # a one-byte Close payload
    ],
)
async def test_client_close_with_reserved_code_is_1002(payload: bytes) -> None:
    """RFC 6455 §7.4: these codes must not appear in a Close frame → fail with 1002."""
    app = Echo()
    async with serve(app, ws_ping_interval=None) as srv:
        await expect_failure(srv, app, frame(0x88, payload), 1002)


async def test_close_reason_invalid_utf8_is_1007() -> None:
    app = Echo()
    async with serve(app, ws_ping_interval=None) as srv:
        await expect_failure(srv, app, frame(0x88, struct.pack("!H", 1000) + b"\xc3\x28"), 1007)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(0x81, b"hi", mask=False), id="unmasked"),  # §5.1
        pytest.param(frame(0x89, b"p" * 126), id="ping-126"),  # §5.5: ≤125 bytes
        pytest.param(frame(0x09, b"p"), id="fragmented-ping"),  # §5.5: not fragmented
        pytest.param(frame(0x88, struct.pack("!H", 1000) + b"r" * 124), id="close-126"),
        pytest.param(frame(0xC1, b"x"), id="rsv1-without-extension"),  # §5.2
        pytest.param(frame(0x83, b"x"), id="reserved-opcode"),
        pytest.param(frame(0x80, b"x"), id="continuation-first"),
        pytest.param(frame(0x01, b"a") + frame(0x81, b"b"), id="new-message-mid-fragment"),
    ],
)
async def test_framing_violations_are_1002(data: bytes) -> None:
    app = Echo()
    async with serve(app, ws_ping_interval=None) as srv:
        await expect_failure(srv, app, data, 1002)


# ------------------------------------------------------------------------ application errors


async def test_app_misuse_gets_clear_errors_and_connection_survives() -> None:
    """send before accept, double accept, bad close codes and a too-long reason are app errors
    the app can catch; none of them corrupts the connection."""
    errors: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

        async def attempt(message: Message) -> None:
            try:
                await send(message)
            except RuntimeError as exc:
                errors.append(str(exc))
            else:
                errors.append("no error for " + repr(message)[:60])

        await attempt({"type": "websocket.send", "text": "too early"})
        await send({"type": "websocket.accept"})
        await attempt({"type": "websocket.accept"})
        for code in (999, 1004, 1005, 1006, 1015, 2000, 5000, "1000"):
            await attempt({"type": "websocket.close", "code": code})
        # RFC 6455 §5.5: a Close payload is ≤125 bytes, i.e. a reason of ≤123 UTF-8 bytes.
        await attempt({"type": "websocket.close", "code": 1000, "reason": "é" * 62})
        await attempt({"type": "websocket.send", "text": "lone \ud800 surrogate"})
        await send({"type": "websocket.send", "text": "still open"})
        await send({"type": "websocket.close", "code": 4000, "reason": "é" * 61 + "x"})
        await receive()

    async with (
        serve(app, ws_ping_interval=None) as srv,
        connect(srv.ws_url, proxy=None, compression=None, ping_interval=None) as ws,
    ):
        assert await ws.recv() == "still open"
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "é" * 61 + "x")
    assert len(errors) == 12, errors
    assert "before websocket.accept" in errors[0]
    assert "not allowed in state open" in errors[1]
    assert all("close code" in e for e in errors[2:10]), errors
    assert "123" in errors[10], errors
    assert "UTF-8" in errors[11], errors


async def test_denial_with_interim_status_is_an_app_error() -> None:
    errors: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send({"type": "websocket.http.response.start", "status": 100, "headers": []})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.http.response.start", "status": 418, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"teapot"})

    async with serve(app, ws_ping_interval=None) as srv:
        got = await raw_http(srv, request())
    assert got.startswith(b"HTTP/1.1 418 ") and got.endswith(b"\r\n\r\nteapot")
    assert errors and "status 100" in errors[0]


async def test_send_before_accept_uncaught_is_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.send", "text": "too early"})

    async with serve(app, ws_ping_interval=None) as srv:
        with pytest.raises(InvalidStatus) as info:
            async with connect(srv.ws_url, proxy=None, ping_interval=None):
                pass
        assert info.value.response.status_code == 500


async def raw_http(srv: LiveServer, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    writer.write(data)
    got = await asyncio.wait_for(reader.read(), 5)
    await close_writer(writer)
    return got


@pytest.mark.parametrize(
    ("headers", "bodies", "expect_body"),
    [
        (
            [(b"Connection", b"keep-alive"), (b"Content-Length", b"5")],
            [b"nope!"],
            b"nope!",
        ),
        ([(b"Transfer-Encoding", b"chunked")], [b"nope!"], b"nope!"),
        (
            [(b"transfer-encoding", b"chunked"), (b"connection", b"close")],
            [b"no", b"pe!"],
            b"2\r\nno\r\n3\r\npe!\r\n0\r\n\r\n",
        ),
        ([(b"Server", b"mine"), (b"Date", b"today")], [b"x"], b"x"),
    ],
)
async def test_denial_framing_headers_appear_once(
    headers: list[tuple[bytes, bytes]], bodies: list[bytes], expect_body: bytes
) -> None:
    """websocket.http.response: the server owns message framing and the connection; an app's
    Connection/Transfer-Encoding/Content-Length/Server/Date must not be duplicated."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        for i, body in enumerate(bodies):
            more = i < len(bodies) - 1
            await send({"type": "websocket.http.response.body", "body": body, "more_body": more})

    async with serve(app, ws_ping_interval=None) as srv:
        got = await raw_http(srv, request())
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    lines = header_lines(head)
    names = [n for n, _ in lines]
    for name in (b"connection", b"content-length", b"transfer-encoding", b"server", b"date"):
        assert names.count(name) <= 1, lines
    assert (b"connection", b"close") in lines
    # Exactly one framing: Content-Length or chunked, never both (RFC 9112 §6.3).
    assert (b"content-length" in names) != (b"transfer-encoding" in names), lines
    assert body == expect_body


# ------------------------------------------------------------------------ resource bounds


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_flood_while_app_not_receiving_is_bounded_then_delivered_in_order(
    compression: str | None,
) -> None:
    n = 3000
    proceed = asyncio.Event()
    got: list[str] = []
    finished = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await proceed.wait()
        while len(got) < n:
            message = await receive()
            got.append(message["text"])
        finished.set()
        await receive()

    payload = "m" * 2000

    async def send_all(ws: Any) -> None:
        for i in range(n):
            await ws.send(f"{i}:{payload}")

    async with (
        serve(app, ws_ping_interval=None, ws_per_message_deflate=True) as srv,
        connect(srv.ws_url, proxy=None, compression=compression, ping_interval=None) as ws,
    ):
        sender = asyncio.ensure_future(send_all(ws))
        (proto,) = [c for c in srv.state.connections if isinstance(c, WebSocketProtocol)]
        assert proto.flow is not None
        flow = proto.flow
        await eventually(lambda: flow.read_paused, 5.0, "reading never paused")
        assert proto.flow.read_paused, "reading never paused"
        assert proto.receive.pending <= MAX_PENDING_MESSAGES
        proceed.set()
        await asyncio.wait_for(finished.wait(), 20)
        await sender
    assert got == [f"{i}:{payload}" for i in range(n)]


async def test_ping_flood_from_a_client_that_never_reads_is_bounded() -> None:
    """Each ping makes a pong; a client that pings but never reads must not make the server
    buffer pongs without bound (RFC 6455 §10.4 implementation-specific limits)."""
    app = Echo()
    async with serve(app, ws_ping_interval=None) as srv:
        _, writer, _ = await raw_open(srv)
        (proto,) = [c for c in srv.state.connections if isinstance(c, WebSocketProtocol)]
        assert proto.transport is not None
        ping = frame(0x89, b"p" * 125)
        worst = 0
        for _ in range(200):
            writer.write(ping * 400)  # 52 KB of pings per round, 10 MB in all, never read
            await asyncio.sleep(0.005)
            worst = max(worst, proto.transport.get_write_buffer_size())
            if writer.transport.get_write_buffer_size() > 2 * 1024 * 1024:
                break  # the server stopped reading us: back-pressure reached the client
        assert worst < 1024 * 1024, f"server buffered {worst} bytes of pongs"
        writer.transport.abort()
        await asyncio.wait_for(app.disconnected.wait(), 5)


async def test_client_that_stops_reading_is_dropped_by_keepalive() -> None:
    """A peer that never reads (so our Close can never be flushed) must still be cut off:
    the connection leaves state.connections and the app sees a disconnect."""
    disconnected = asyncio.Event()
    codes: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

        async def watch() -> None:
            while (m := await receive())["type"] != "websocket.disconnect":
                pass
            codes.append(m["code"])
            disconnected.set()

        watcher = asyncio.ensure_future(watch())
        try:
            for _ in range(64):
                await send({"type": "websocket.send", "bytes": b"z" * (256 * 1024)})
        except OSError:
            pass
        await watcher

    async with serve(app, ws_ping_interval=0.1, ws_ping_timeout=0.1) as srv:
        _reader, writer, _ = await raw_open(srv)
        await asyncio.wait_for(disconnected.wait(), 10)
        await asyncio.wait_for(srv.state.wait_idle(), 5)
        assert codes and codes[0] in (1006, 1011)
        await close_writer(writer)


async def test_client_close_then_never_reading_is_bounded() -> None:
    """Client sends Close but never reads our (large) pending output: our close must not wait
    forever to flush; it is aborted after the close timeout."""
    sent_all = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        # One big message: fills the socket buffers and leaves most of it in ours.
        await send({"type": "websocket.send", "bytes": b"z" * (8 * 1024 * 1024)})
        sent_all.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with serve(app, ws_ping_interval=None, ws_ping_timeout=0.2) as srv:
        _reader, writer, _ = await raw_open(srv)
        await asyncio.wait_for(sent_all.wait(), 10)
        writer.write(frame(0x88, struct.pack("!H", 1000)))
        await asyncio.wait_for(srv.state.wait_idle(), 5)
        writer.transport.abort()


async def test_many_connections_open_and_close_leave_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = Echo()
    protos: list[WebSocketProtocol] = []
    original = WebSocketProtocol.start_upgrade

    def recording(self: WebSocketProtocol, *args: Any) -> None:
        protos.append(self)
        original(self, *args)

    monkeypatch.setattr(WebSocketProtocol, "start_upgrade", recording)

    async def one(i: int) -> None:
        if i % 4 == 3:
            _reader, writer, _ = await raw_open(srv)
            writer.transport.abort()  # abrupt loss
            return
        async with connect(srv.ws_url, proxy=None, compression=None, ping_interval=None) as ws:
            await ws.send(f"hello {i}")
            assert await ws.recv() == f"hello {i}"

    async with serve(app, ws_ping_interval=0.5, ws_ping_timeout=0.5) as srv:
        for _ in range(3):
            await asyncio.gather(*[one(i) for i in range(40)])
        await asyncio.wait_for(srv.state.wait_idle(), 10)
        await eventually(lambda: not srv.state.tasks, 2.0, "tasks left running")
        assert not srv.state.connections
        assert not srv.state.tasks
    assert len(protos) == 120
    assert all(not p._timer.armed and p._lost for p in protos)  # no timer outlives its socket
    assert all(p.task is not None and p.task.done() for p in protos)


async def test_shutdown_during_handshake_is_503_and_app_sees_disconnect() -> None:
    seen: list[Message] = []
    waiting = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        waiting.set()
        seen.append(await receive())  # the disconnect, delivered by shutdown
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            outcome.append(type(exc).__name__)

    async with serve(app, ws_ping_interval=None) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        writer.write(request())
        await waiting.wait()
        srv.server.close()
        for conn in list(srv.state.connections):
            conn.shutdown()
        got = await asyncio.wait_for(reader.read(), 5)
        await close_writer(writer)
        await asyncio.wait_for(srv.state.wait_idle(), 5)
    assert got.startswith(b"HTTP/1.1 503 ")
    assert seen and seen[0]["type"] == "websocket.disconnect"
    assert outcome == ["ClientDisconnected"]


# ------------------------------------------------------------------- permessage-deflate offers


@pytest.mark.parametrize(
    ("offer", "expect"),
    [
        # What Chromium sends.
        (b"permessage-deflate; client_max_window_bits", "client_max_window_bits=15"),
        # Several offers, most preferred first: the first acceptable one wins.
        (
            b"permessage-deflate; server_max_window_bits=10; client_max_window_bits, "
            b"permessage-deflate; client_max_window_bits",
            "server_max_window_bits=10",
        ),
        (
            b"permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
            "server_no_context_takeover",
        ),
        # RFC 7692 §5: unknown, duplicated or invalid parameters → decline that offer.
        (b"permessage-deflate; x-unknown=1, permessage-deflate", "permessage-deflate"),
        (
            b"permessage-deflate; server_no_context_takeover; server_no_context_takeover, "
            b"permessage-deflate; client_no_context_takeover",
            "client_no_context_takeover",
        ),
        (b'permessage-deflate; client_max_window_bits="10"', "client_max_window_bits=10"),
        (b"permessage-deflate; server_max_window_bits", None),
        (b"permessage-deflate; server_max_window_bits=8", None),
        (b"permessage-deflate; client_max_window_bits=16", None),
        (b"x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"),
    ],
)
async def test_deflate_offers(offer: bytes, expect: str | None) -> None:
    app = Echo()
    async with serve(app, ws_per_message_deflate=True, ws_ping_interval=None) as srv:
        reader, writer, head = await raw_open(srv, b"Sec-WebSocket-Extensions: " + offer + b"\r\n")
        value = response_header(head, b"sec-websocket-extensions")
        if expect is None:
            assert value is None, head
            c = WsprotoConnection(ConnectionType.CLIENT)
        else:
            assert value is not None, head
            text = value.decode()
            assert text.startswith("permessage-deflate"), text
            assert expect in text, text
            for param in ("x-unknown", "server_no_context_takeover; server_no"):
                assert param not in text
            c = deflate_client(text)
        message = "compress me please " * 300
        for _ in range(3):  # several messages: exercises context takeover (or not)
            writer.write(c.send(TextMessage(data=message)))
            received = ""
            while True:
                c.receive_data(await asyncio.wait_for(reader.read(65536), 5))
                done = False
                for event in c.events():
                    assert isinstance(event, TextMessage), event
                    received += event.data
                    done = event.message_finished
                if done:
                    break
            assert received == message
        writer.write(c.send(CloseConnection(code=1000)))
        await asyncio.wait_for(reader.read(), 5)
        await close_writer(writer)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: ClientPerMessageDeflateFactory(),
        lambda: ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True
        ),
        lambda: ClientPerMessageDeflateFactory(server_max_window_bits=9, client_max_window_bits=9),
    ],
)
async def test_websockets_client_deflate_variants(factory: Callable[[], Any]) -> None:
    app = Echo()
    async with (
        serve(app, ws_per_message_deflate=True, ws_ping_interval=None) as srv,
        connect(
            srv.ws_url, proxy=None, compression=None, extensions=[factory()], ping_interval=None
        ) as ws,
    ):
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        for i in range(5):
            text = f"message {i} " * 1000
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send(text.encode())
            assert await ws.recv() == text.encode()


async def test_deflate_bomb_is_1009_without_inflating_everything() -> None:
    """A tiny compressed frame that inflates to far more than ws_max_size → 1009."""
    import zlib

    app = Echo()
    async with serve(
        app, ws_per_message_deflate=True, ws_max_size=64 * 1024, ws_ping_interval=None
    ) as srv:
        reader, writer, head = await raw_open(
            srv, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
        assert response_header(head, b"sec-websocket-extensions") is not None
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = comp.compress(b"\x00" * (50 * 1024 * 1024)) + comp.flush(zlib.Z_SYNC_FLUSH)
        writer.write(frame(0xC2, body[:-4]))
        got = await asyncio.wait_for(reader.read(), 10)
        await close_writer(writer)
        events = server_events(got)
        assert isinstance(events[-1], CloseConnection) and events[-1].code == 1009
        await asyncio.wait_for(app.disconnected.wait(), 5)


async def test_ping_payload_echoed_in_pong_and_binary_roundtrip() -> None:
    app = Echo()
    async with serve(app, ws_ping_interval=None) as srv:
        reader, writer, _ = await raw_open(srv)
        writer.write(frame(0x89, b"\x00\xffpayload"))
        writer.write(frame(0x82, b"\x00\x01\x02"))
        c = WsprotoConnection(ConnectionType.CLIENT)
        events: list[Any] = []
        while len(events) < 2:
            c.receive_data(await asyncio.wait_for(reader.read(65536), 5))
            events.extend(c.events())
        assert isinstance(events[0], Pong) and events[0].payload == b"\x00\xffpayload"
        assert isinstance(events[1], BytesMessage) and events[1].data == b"\x00\x01\x02"
        writer.write(frame(0x88, struct.pack("!H", 1000) + b"bye"))
        await asyncio.wait_for(reader.read(), 5)
        await close_writer(writer)
        await asyncio.wait_for(app.disconnected.wait(), 5)
        assert app.disconnects == [{"type": "websocket.disconnect", "code": 1000, "reason": "bye"}]


@pytest.mark.parametrize("opcode", [0x01, 0x02])
async def test_tiny_fragments_do_not_multiply_memory(opcode: int) -> None:
    """ws_max_size counts payload bytes; 1-byte fragments must not cost ~50 bytes of Python
    object overhead each while the message is reassembled."""
    n = 60_000
    got: list[Any] = []
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        got.append(message.get("text", message.get("bytes")))
        done.set()
        await receive()

    async with serve(app, ws_ping_interval=None) as srv:
        reader, writer, _ = await raw_open(srv)
        (proto,) = [c for c in srv.state.connections if isinstance(c, WebSocketProtocol)]
        conn = proto.conn
        assert conn is not None
        writer.write(frame(opcode, b"a") + frame(0x00, b"b") * (n - 1))
        await eventually(lambda: conn._msg_size >= n, 10.0, "fragments never all read")
        assert conn._msg_size == n
        assert len(conn._msg_parts) <= n // 100, len(conn._msg_parts)
        writer.write(frame(0x80, b"c"))
        await asyncio.wait_for(done.wait(), 10)
        expected = "a" + "b" * (n - 1) + "c"
        assert got == [expected if opcode == 0x01 else expected.encode()]
        writer.write(frame(0x88, struct.pack("!H", 1000)))
        await asyncio.wait_for(reader.read(), 5)
        await close_writer(writer)


async def test_late_pong_does_not_cancel_the_closing_deadline() -> None:
    """The app closes while our keepalive Ping is unanswered; the peer then sends the Pong but
    never its Close.  The closing-handshake deadline must still cut it off."""
    closing = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # any message: close
        await send({"type": "websocket.close", "code": 1000})
        closing.set()
        await receive()

    async with serve(app, ws_ping_interval=0.05, ws_ping_timeout=0.5) as srv:
        reader, writer, _ = await raw_open(srv)
        c = WsprotoConnection(ConnectionType.CLIENT)
        ping: Any = None
        while ping is None:
            c.receive_data(await asyncio.wait_for(reader.read(65536), 5))
            ping = next((e for e in c.events() if type(e).__name__ == "Ping"), None)
        writer.write(frame(0x81, b"close please"))
        await asyncio.wait_for(closing.wait(), 5)
        writer.write(frame(0x8A, ping.payload))  # the late Pong, and never a Close
        rest = await asyncio.wait_for(reader.read(), 5)  # EOF once the deadline aborts us
        c.receive_data(rest)
        assert any(isinstance(e, CloseConnection) for e in c.events())
        await asyncio.wait_for(srv.state.wait_idle(), 5)
        await close_writer(writer)


UVLOOP_CASES: dict[str, Callable[[], Any]] = {
    "ping_flood": test_ping_flood_from_a_client_that_never_reads_is_bounded,
    "stops_reading": test_client_that_stops_reading_is_dropped_by_keepalive,
    "close_never_reading": test_client_close_then_never_reading_is_bounded,
    "late_pong": test_late_pong_does_not_cancel_the_closing_deadline,
    "reserved_close_code": lambda: test_client_close_with_reserved_code_is_1002(b"\x03\xec"),
    "unmasked": lambda: test_framing_violations_are_1002(frame(0x81, b"x", mask=False)),
    "deflate_bomb": test_deflate_bomb_is_1009_without_inflating_everything,
}


@pytest.mark.parametrize("case", sorted(UVLOOP_CASES))
def test_on_uvloop(case: str) -> None:
    """uvloop (the production default) differs in write_eof, buffering and close()."""
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(UVLOOP_CASES[case](), 30))
