"""WebSocket end to end: real sockets on 127.0.0.1, the ``websockets`` client and raw sockets."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage

from server.protocols.websocket import WebSocketProtocol
from server.types import Message, Receive, Scope, Send
from tests.support.live import LiveServer, serve
from tests.support.polling import eventually


class Recorder:
    """Echo app that records what the server told it."""

    def __init__(self) -> None:
        self.disconnects: list[Message] = []
        self.disconnected = asyncio.Event()
        self.accepted = asyncio.Event()
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        path = scope["path"]
        if path == "/deny":
            await send({"type": "websocket.close"})
            return
        if path == "/http-deny":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"x-why", b"token")],
                }
            )
            await send(
                {"type": "websocket.http.response.body", "body": b"need ", "more_body": True}
            )
            await send({"type": "websocket.http.response.body", "body": b"a token"})
            return
        if path == "/bad-subprotocol":
            # Not offered by the client: an application error → HTTP 500, nothing accepted.
            await send({"type": "websocket.accept", "subprotocol": "never-offered"})
        offered = scope["subprotocols"]
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": offered[-1] if offered else None,
                "headers": [(b"x-extra", b"yes"), (b"set-cookie", b"a=b")],
            }
        )
        self.accepted.set()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message)
                self.disconnected.set()
                return
            if message.get("text") == "close please":
                await send({"type": "websocket.close", "code": 4321, "reason": "as asked"})
                continue
            if message.get("text") == "return":
                return
            if message.get("text") == "crash":
                raise RuntimeError("app bug after accept")
            await send(
                {
                    "type": "websocket.send",
                    "text": message.get("text"),
                    "bytes": message.get("bytes"),
                }
            )


@pytest.fixture
async def live() -> AsyncIterator[tuple[LiveServer, Recorder]]:
    app = Recorder()
    async with serve(app, ws_ping_interval=None) as srv:
        yield srv, app


def client(srv: LiveServer, path: str = "/", **kwargs: Any) -> connect:
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("compression", None)
    kwargs.setdefault("ping_interval", None)
    return connect(srv.ws_url + path, **kwargs)


async def test_echo_text_binary_subprotocol_headers(live: tuple[LiveServer, Recorder]) -> None:
    srv, app = live
    async with client(srv, "/chat?room=1", subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"
        assert ws.response is not None
        assert ws.response.headers["x-extra"] == "yes"
        assert ws.response.headers["set-cookie"] == "a=b"
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01" * 40000)
        assert await ws.recv() == b"\x00\x01" * 40000
        await ws.send(["frag", "mented", " ✓"])  # one message in three frames
        assert await ws.recv() == "fragmented ✓"
    await app.disconnected.wait()
    assert app.disconnects == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]
    scope = app.scopes[0]
    assert scope["type"] == "websocket" and scope["scheme"] == "ws"
    assert scope["path"] == "/chat" and scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["a", "b"]
    assert "websocket.http.response" in scope["extensions"]


async def test_client_close_code_and_reason(live: tuple[LiveServer, Recorder]) -> None:
    srv, app = live
    ws = await client(srv)
    await ws.close(4005, "client done")
    await app.disconnected.wait()
    assert app.disconnects == [
        {"type": "websocket.disconnect", "code": 4005, "reason": "client done"}
    ]
    rcvd = ws.protocol.close_rcvd
    assert rcvd is not None and rcvd.code == 4005  # echoed (§5.5.1)


async def test_server_close_code_and_reason(live: tuple[LiveServer, Recorder]) -> None:
    srv, app = live
    async with client(srv) as ws:
        await ws.send("close please")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4321, "as asked")
    await app.disconnected.wait()
    assert app.disconnects[0]["code"] == 4321  # the client's echo completes the handshake


async def test_app_return_closes_1000(live: tuple[LiveServer, Recorder]) -> None:
    srv, _ = live
    async with client(srv) as ws:
        await ws.send("return")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1000


async def test_close_before_accept_is_403(live: tuple[LiveServer, Recorder]) -> None:
    srv, _ = live
    with pytest.raises(InvalidStatus) as info:
        async with client(srv, "/deny"):
            pass
    assert info.value.response.status_code == 403
    assert info.value.response.headers["server"] == "channels-server"
    assert info.value.response.headers["date"].endswith(" GMT")


async def test_app_errors_500_before_accept_1011_after(
    live: tuple[LiveServer, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    srv, _ = live
    with pytest.raises(InvalidStatus) as info:
        async with client(srv, "/bad-subprotocol"):
            pass
    assert info.value.response.status_code == 500
    async with client(srv) as ws:
        await ws.send("crash")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert "app bug after accept" in caplog.text


async def test_http_response_denial(live: tuple[LiveServer, Recorder]) -> None:
    srv, _ = live
    with pytest.raises(InvalidStatus) as info:
        async with client(srv, "/http-deny"):
            pass
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["x-why"] == "token"
    assert response.body == b"need a token"


async def test_bad_version_gets_426_over_the_wire(live: tuple[LiveServer, Recorder]) -> None:
    srv, _ = live
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    writer.write(handshake_request(version=b"8"))
    data = await reader.read()  # until the server closes
    writer.close()
    await writer.wait_closed()
    assert data.startswith(b"HTTP/1.1 426 ")
    assert b"sec-websocket-version: 13\r\n" in data.lower()


async def test_permessage_deflate() -> None:
    app = Recorder()
    async with serve(app, ws_per_message_deflate=True, ws_ping_interval=None) as srv:
        ws = await client(srv, compression="deflate")
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        text = "compressible " * 5000
        await ws.send(text)
        assert await ws.recv() == text
        await ws.close()
    # Without the option the offer is declined.
    async with serve(app, ws_ping_interval=None) as srv:
        ws = await client(srv, compression="deflate")
        assert ws.response is not None
        assert "sec-websocket-extensions" not in ws.response.headers
        await ws.close()


@pytest.mark.parametrize("size", [1001, 2_000_000])
async def test_max_size_1009(size: int) -> None:
    app = Recorder()
    async with serve(app, ws_max_size=1000, ws_ping_interval=None) as srv:
        async with client(srv, max_size=None) as ws:
            await ws.send(b"x" * 1000)
            assert await ws.recv() == b"x" * 1000  # exactly the limit passes
            await ws.send(b"x" * size)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await app.disconnected.wait()
        assert app.disconnects[0]["code"] == 1009


# ----------------------------------------------------------------------------- raw sockets


def handshake_request(version: bytes = b"13") -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: " + version + b"\r\n\r\n"
    )


def masked(first: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes((first, 0x80 | len(payload))) + mask + body


async def raw_open(srv: LiveServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    writer.write(handshake_request())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    return reader, writer


def parse_server_frames(data: bytes) -> list[Any]:
    c = WsprotoConnection(ConnectionType.CLIENT)
    c.receive_data(data)
    return list(c.events())


async def test_invalid_utf8_is_1007(live: tuple[LiveServer, Recorder]) -> None:
    srv, app = live
    reader, writer = await raw_open(srv)
    writer.write(masked(0x81, b"ok\xff\xfe"))
    data = await asyncio.wait_for(reader.read(), 5)  # server half-closes after its Close
    writer.close()
    await writer.wait_closed()
    events = parse_server_frames(data)
    assert isinstance(events[-1], CloseConnection) and events[-1].code == 1007
    await app.disconnected.wait()
    assert app.disconnects[0]["code"] == 1007


async def test_ping_timeout_closes_1011() -> None:
    app = Recorder()
    async with serve(app, ws_ping_interval=0.05, ws_ping_timeout=0.05) as srv:
        reader, writer = await raw_open(srv)  # never answers pings
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
        events = parse_server_frames(data)
        assert isinstance(events[0], Ping)
        assert isinstance(events[-1], CloseConnection) and events[-1].code == 1011
        await app.disconnected.wait()
        assert app.disconnects[0]["code"] == 1011


async def test_pings_answered_keep_connection_alive() -> None:
    app = Recorder()
    async with serve(app, ws_ping_interval=0.02, ws_ping_timeout=0.5) as srv:
        reader, writer = await raw_open(srv)
        c = WsprotoConnection(ConnectionType.CLIENT)
        pings = 0
        while pings < 3:  # each pong re-arms the interval timer, so pings keep coming
            c.receive_data(await asyncio.wait_for(reader.read(1024), 5))
            for event in c.events():
                assert isinstance(event, Ping)
                pings += 1
                writer.write(c.send(event.response()))
        writer.write(c.send(TextMessage(data="still here")))
        echoed: list[Any] = []
        while not echoed:
            c.receive_data(await asyncio.wait_for(reader.read(1024), 5))
            echoed = [e for e in c.events() if isinstance(e, TextMessage)]
        assert echoed[0].data == "still here"
        assert not app.disconnects
        writer.close()
        await writer.wait_closed()


async def test_shutdown_sends_1001_and_app_sees_disconnect() -> None:
    app = Recorder()
    async with serve(app, ws_ping_interval=None) as srv:
        ws = await client(srv)
        await app.accepted.wait()
        pending = asyncio.ensure_future(ws.recv())
    # Leaving serve() shut the server down gracefully.
    with pytest.raises(ConnectionClosed) as info:
        await pending
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert app.disconnects == [
        {"type": "websocket.disconnect", "code": 1001, "reason": "server shutting down"}
    ]
    await ws.close()


async def test_abrupt_client_loss_is_1006(live: tuple[LiveServer, Recorder]) -> None:
    srv, app = live
    _, writer = await raw_open(srv)
    writer.transport.abort()
    await app.disconnected.wait()
    assert app.disconnects[0]["code"] == 1006


async def test_send_backpressure_with_a_client_that_does_not_read() -> None:
    chunk = b"z" * (256 * 1024)
    total = 64  # 16 MiB in all, far more than socket buffers hold
    progress: list[int] = []
    done = asyncio.Event()

    async def flood(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for i in range(total):
            await send({"type": "websocket.send", "bytes": chunk})
            progress.append(i)
        done.set()
        await receive()

    async with serve(flood, ws_ping_interval=None) as srv:
        reader, writer = await raw_open(srv)
        try:
            (proto,) = [c for c in srv.state.connections if isinstance(c, WebSocketProtocol)]
            assert proto.flow is not None and proto.transport is not None
            # Wait (bounded) until the app is parked in send() waiting for the drain.
            flow = proto.flow
            await eventually(lambda: flow._drain_waiter is not None, 5.0, "send never blocked")
            assert proto.flow._drain_waiter is not None, "send never blocked"
            assert len(progress) < total
            # Memory stays bounded: what sits in our buffer is about one message, not 16 MiB.
            assert proto.transport.get_write_buffer_size() < 4 * len(chunk)
            # Now read everything: the app resumes and finishes.
            c = WsprotoConnection(ConnectionType.CLIENT)
            received = 0
            while received < total * len(chunk):
                c.receive_data(await reader.read(1 << 20))
                for event in c.events():
                    received += len(event.data)  # type: ignore[attr-defined]
            await done.wait()
            assert len(progress) == total
            writer.write(masked(0x88, struct.pack("!H", 1000)))
            await reader.read()
            writer.close()
            await writer.wait_closed()
        finally:
            # A failed assertion must not leave the client socket for a later test to
            # collect (it would surface there as an unclosed-transport warning).
            writer.transport.abort()


async def test_many_clients_broadcast_same_payload() -> None:
    """Fan-out path: the same str object goes to many connections (frame encoded once)."""
    sends: list[Send] = []
    ready = asyncio.Event()
    n = 20

    async def hub(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        sends.append(send)
        if len(sends) == n:
            ready.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with serve(hub, ws_ping_interval=None) as srv:
        clients: list[ClientConnection] = [await client(srv) for _ in range(n)]
        await ready.wait()
        payload = "news for everyone " * 10
        for send in sends:
            await send({"type": "websocket.send", "text": payload})
        assert [await c.recv() for c in clients] == [payload] * n
        for c in clients:
            await c.close()


async def test_text_frame_raw_exact_bytes(live: tuple[LiveServer, Recorder]) -> None:
    srv, _ = live
    reader, writer = await raw_open(srv)
    writer.write(masked(0x01, b"ab") + masked(0x89, b"p") + masked(0x80, b"c"))
    # Pong first (answered while the fragmented message is still open), then the echo.
    assert await reader.readexactly(3) == b"\x8a\x01p"
    assert await reader.readexactly(5) == b"\x81\x03abc"
    c = WsprotoConnection(ConnectionType.CLIENT)
    writer.write(c.send(TextMessage(data="x")))
    assert await reader.readexactly(3) == b"\x81\x01x"
    writer.write(c.send(CloseConnection(code=1000)))
    assert await reader.readexactly(4) == b"\x88\x02\x03\xe8"
    assert await reader.read() == b""  # server closes TCP first (§7.1.1)
    writer.close()
    await writer.wait_closed()


# ------------------------------------------------------------------------------ on uvloop


async def _with_live(case: Any) -> None:
    app = Recorder()
    async with serve(app, ws_ping_interval=None) as srv:
        await case((srv, app))


UVLOOP_CASES: dict[str, Any] = {
    "echo": lambda: _with_live(test_echo_text_binary_subprotocol_headers),
    "server_close": lambda: _with_live(test_server_close_code_and_reason),
    "denial": lambda: _with_live(test_http_response_denial),
    "utf8_1007": lambda: _with_live(test_invalid_utf8_is_1007),
    "raw_bytes": lambda: _with_live(test_text_frame_raw_exact_bytes),
    "abrupt_1006": lambda: _with_live(test_abrupt_client_loss_is_1006),
    "deflate": test_permessage_deflate,
    "max_size": lambda: test_max_size_1009(2_000_000),
    "ping_timeout": test_ping_timeout_closes_1011,
    "shutdown": test_shutdown_sends_1001_and_app_sees_disconnect,
    "backpressure": test_send_backpressure_with_a_client_that_does_not_read,
}


@pytest.mark.parametrize("case", sorted(UVLOOP_CASES))
def test_on_uvloop(case: str) -> None:
    """The same cases on uvloop (the default loop in production): its transports differ in
    write_eof, buffering and writelines."""
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(UVLOOP_CASES[case](), 30))


async def test_access_log_line_per_handshake(
    live: tuple[LiveServer, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    srv, _ = live
    caplog.set_level(logging.INFO, logger="server.access")
    async with client(srv, "/chat?room=2") as ws:
        await ws.send("x")
        await ws.recv()
    with pytest.raises(InvalidStatus):
        async with client(srv, "/deny"):
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert any('"GET /chat?room=2 HTTP/1.1" 101' in line for line in lines), lines
    assert any('"GET /deny HTTP/1.1" 403' in line for line in lines), lines
