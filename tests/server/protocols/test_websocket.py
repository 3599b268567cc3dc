"""WebSocketProtocol over FakeTransport: exact bytes, one write per send, timers fired by hand."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from server.config import Config
from server.protocols import websocket as wsmod
from server.protocols.websocket import WebSocketProtocol, WebSocketReceive
from server.sansio.ws_errors import ClientDisconnected
from server.sansio.ws_frames import State
from server.state import ServerState
from server.types import Message, Receive, Scope, Send
from tests.support.fakes import FakeTransport

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def ws_scope(extra_headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"example.com"),
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-key", KEY),
            (b"sec-websocket-version", b"13"),
            *(extra_headers or []),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


class Harness:
    """An app that parks and lets the test drive ``receive``/``send`` directly."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.finish = asyncio.Event()
        self.raise_exc: BaseException | None = None
        self.scope: Scope = {}
        self.receive: Receive
        self.send: Send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.ready.set()
        await self.finish.wait()
        if self.raise_exc is not None:
            raise self.raise_exc


async def start(
    app: Any = None, *, buffered: bytes = b"", scope: Scope | None = None, **options: Any
) -> tuple[WebSocketProtocol, FakeTransport, ServerState, Harness]:
    harness = app if app is not None else Harness()
    options.setdefault("date_header", False)
    config = Config(**options)
    state = ServerState()
    proto = WebSocketProtocol(config, harness, state, asyncio.get_running_loop())
    transport = FakeTransport(proto)
    proto.start_upgrade(transport, scope if scope is not None else ws_scope(), buffered)
    if isinstance(harness, Harness):
        await harness.ready.wait()
    return proto, transport, state, harness


async def accepted(**options: Any) -> tuple[WebSocketProtocol, FakeTransport, ServerState, Harness]:
    proto, transport, state, h = await start(**options)
    assert await h.receive() == {"type": "websocket.connect"}
    await h.send({"type": "websocket.accept"})
    assert transport.writes[0].startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    transport.clear()
    return proto, transport, state, h


def client_frames(*events: Any) -> bytes:
    c = WsprotoConnection(ConnectionType.CLIENT)
    return b"".join(c.send(e) for e in events)


def server_events(data: bytes) -> list[Any]:
    c = WsprotoConnection(ConnectionType.CLIENT)
    c.receive_data(data)
    return list(c.events())


async def settle() -> None:
    """Let callbacks scheduled with call_soon (e.g. connection_lost) run."""
    for _ in range(3):
        await asyncio.sleep(0)


def fire(proto: WebSocketProtocol, expected: str) -> None:
    """Virtual time: run the connection's single timer now instead of waiting for it."""
    callback = proto._timer.callback
    assert callback is not None, "no timer armed"
    assert getattr(callback, "__name__", None) == expected
    proto._timer.cancel()
    callback()


# ------------------------------------------------------------------------------- handshake


async def test_scope_and_accept_bytes() -> None:
    scope = ws_scope([(b"sec-websocket-protocol", b"chat, v2")])
    proto, transport, state, h = await start(scope=scope, server_header=True)
    assert h.scope["subprotocols"] == ["chat", "v2"]
    assert "websocket.http.response" in h.scope["extensions"]
    assert proto in state.connections and proto.task in state.tasks
    assert transport.writes == []  # nothing until the app answers
    await h.receive()
    await h.send({"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x", b"y")]})
    assert transport.writes == [
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nsec-websocket-protocol: chat\r\n"
        b"server: channels-server\r\nx: y\r\n\r\n"
    ]
    h.finish.set()


async def test_bad_handshake_answers_without_running_app() -> None:
    scope = ws_scope()
    scope["headers"] = [
        (n, b"7" if n == b"sec-websocket-version" else v) for n, v in scope["headers"]
    ]
    called = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    proto, transport, state, _ = await start(app, scope=scope)
    assert transport.data.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"sec-websocket-version: 13\r\n" in transport.data
    assert transport.closed
    await settle()
    assert not called and proto not in state.connections


async def test_close_before_accept_is_403_and_app_sees_disconnect() -> None:
    proto, transport, state, h = await start()
    await h.receive()
    await h.send({"type": "websocket.close"})
    assert transport.writes == [
        b"HTTP/1.1 403 Forbidden\r\nserver: channels-server\r\n"
        b"content-length: 0\r\nconnection: close\r\n\r\n"
    ]
    assert transport.closed
    assert (await h.receive())["type"] == "websocket.disconnect"
    with pytest.raises(OSError):
        await h.send({"type": "websocket.send", "text": "x"})
    h.finish.set()
    await proto.task  # type: ignore[misc]
    await settle()
    assert not state.connections


@pytest.mark.parametrize(("error", "status"), [(False, b"403"), (True, b"500")])
async def test_app_exit_before_accept(error: bool, status: bytes) -> None:
    proto, transport, _, h = await start()
    if error:
        h.raise_exc = RuntimeError("boom")
    h.finish.set()
    await proto.task  # type: ignore[misc]
    assert transport.data.startswith(b"HTTP/1.1 " + status)
    assert transport.closed


async def test_denial_response_one_write_per_send() -> None:
    _proto, transport, _, h = await start()
    await h.send(
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    assert transport.writes == []  # head waits for the first body chunk
    await h.send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
    await h.send({"type": "websocket.http.response.body", "body": b"b"})
    assert len(transport.writes) == 2
    assert transport.data.endswith(b"\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n")
    assert transport.closed
    h.finish.set()


# ------------------------------------------------------------------------------ data flow


async def test_echo_exact_bytes_one_write_per_send() -> None:
    proto, transport, _, h = await accepted()
    proto.data_received(client_frames(TextMessage(data="hello")))
    assert await h.receive() == {"type": "websocket.receive", "text": "hello"}
    await h.send({"type": "websocket.send", "text": "hello"})
    await h.send({"type": "websocket.send", "bytes": b"\x01\x02"})
    assert transport.writes == [b"\x81\x05hello", b"\x82\x02\x01\x02"]
    big = b"x" * 100_000
    await h.send({"type": "websocket.send", "bytes": big})
    assert len(transport.writes) == 3  # header + payload through one writelines call
    assert transport.writes[2] == b"\x82\x7f" + struct.pack("!Q", len(big)) + big
    h.finish.set()


async def test_receive_arm_resolves_directly_from_data_received() -> None:
    proto, _transport, _, h = await accepted()
    receive: Any = h.receive
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Message] = loop.create_future()
    receive.arm(fut)
    assert not fut.done()
    proto.data_received(client_frames(TextMessage(data="a")))
    # Resolved synchronously inside data_received: no task hop, no queue.
    assert fut.done() and fut.result() == {"type": "websocket.receive", "text": "a"}
    # A cancelled armed future does not swallow the message.
    cancelled: asyncio.Future[Message] = loop.create_future()
    receive.arm(cancelled)
    cancelled.cancel()
    proto.data_received(client_frames(TextMessage(data="b")))
    again: asyncio.Future[Message] = loop.create_future()
    receive.arm(again)
    assert again.result() == {"type": "websocket.receive", "text": "b"}
    h.finish.set()


async def test_receive_object_standalone() -> None:
    loop = asyncio.get_running_loop()
    drained: list[int] = []
    r = WebSocketReceive(loop, lambda: drained.append(1))
    r.push({"type": "websocket.connect"})
    assert await r() == {"type": "websocket.connect"}
    waiter = asyncio.ensure_future(r())
    await asyncio.sleep(0)
    r.push({"type": "websocket.disconnect", "code": 1000, "reason": ""})
    assert (await waiter)["code"] == 1000
    # After the disconnect, receive keeps returning it instead of hanging.
    assert (await r())["type"] == "websocket.disconnect"
    assert drained == [1]


async def test_fragmented_message_reassembled() -> None:
    proto, _, _, h = await accepted()
    data = client_frames(
        TextMessage(data="he", message_finished=False),
        TextMessage(data="llo", message_finished=True),
    )
    for i in range(len(data)):  # one byte at a time
        proto.data_received(data[i : i + 1])
    assert await h.receive() == {"type": "websocket.receive", "text": "hello"}
    h.finish.set()


async def test_slow_app_pauses_reading_and_bounds_pending() -> None:
    proto, transport, _, h = await accepted()
    n = 100
    proto.data_received(client_frames(*(TextMessage(data=str(i)) for i in range(n))))
    assert proto.receive.pending == wsmod.MAX_PENDING_MESSAGES
    assert not transport.reading
    got = [(await h.receive())["text"] for _ in range(n)]
    assert got == [str(i) for i in range(n)]
    assert transport.reading


async def test_big_pending_bytes_pause_reading() -> None:
    proto, transport, _, h = await accepted()
    chunk = "x" * (wsmod.MAX_PENDING_BYTES // 2 + 1)
    proto.data_received(client_frames(*(TextMessage(data=chunk) for _ in range(4))))
    assert proto.receive.pending == 2 and not transport.reading
    for _ in range(4):
        assert (await h.receive())["text"] == chunk
    assert transport.reading
    h.finish.set()


async def test_send_waits_for_drain_when_transport_full() -> None:
    _proto, transport, _, h = await accepted()
    transport.fill()
    sender = asyncio.ensure_future(h.send({"type": "websocket.send", "text": "later"}))
    await settle()
    assert not sender.done() and transport.writes == []
    transport.drain_buffer()
    await sender
    assert transport.writes == [b"\x81\x05later"]
    h.finish.set()


async def test_send_blocked_on_drain_sees_disconnect() -> None:
    _proto, transport, _, h = await accepted()
    transport.fill()
    sender = asyncio.ensure_future(h.send({"type": "websocket.send", "text": "x"}))
    await settle()
    transport.peer_closed()
    with pytest.raises(ClientDisconnected):
        await sender
    h.finish.set()


async def test_ping_from_client_gets_pong() -> None:
    proto, transport, _, h = await accepted()
    proto.data_received(client_frames(Ping(payload=b"abc")))
    assert transport.writes == [b"\x8a\x03abc"]
    h.finish.set()


# ----------------------------------------------------------------------------- closing


async def test_client_close_echoed_and_delivered() -> None:
    proto, transport, state, h = await accepted()
    proto.data_received(client_frames(CloseConnection(code=4002, reason="bye")))
    assert transport.writes == [b"\x88\x02" + struct.pack("!H", 4002)]
    assert transport.closed
    assert await h.receive() == {"type": "websocket.disconnect", "code": 4002, "reason": "bye"}
    with pytest.raises(ClientDisconnected):
        await h.send({"type": "websocket.send", "text": "x"})
    await settle()
    assert not state.connections
    h.finish.set()


async def test_app_close_waits_for_client_reply() -> None:
    proto, transport, _, h = await accepted(ws_ping_interval=None)
    await h.send({"type": "websocket.close", "code": 4100, "reason": "r"})
    assert transport.writes == [b"\x88\x03" + struct.pack("!H", 4100) + b"r"]
    assert not transport.closed and proto._timer.callback.__name__ == "_on_close_timeout"
    proto.data_received(client_frames(CloseConnection(code=4100)))
    assert transport.closed and len(transport.writes) == 1
    assert (await h.receive())["code"] == 4100
    h.finish.set()


async def test_close_timeout_aborts() -> None:
    proto, transport, _, h = await accepted(ws_ping_interval=None)
    await h.send({"type": "websocket.close"})
    fire(proto, "_on_close_timeout")
    assert transport.aborted
    await settle()
    assert (await h.receive()) == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    h.finish.set()


@pytest.mark.parametrize(("error", "code"), [(False, 1000), (True, 1011)])
async def test_app_exit_after_accept(error: bool, code: int) -> None:
    proto, transport, _, h = await accepted()
    if error:
        h.raise_exc = ValueError("boom")
    h.finish.set()
    await proto.task  # type: ignore[misc]
    (event,) = server_events(transport.data)
    assert isinstance(event, CloseConnection) and event.code == code


async def test_abrupt_loss_is_1006() -> None:
    _proto, transport, state, h = await accepted()
    transport.peer_closed()
    assert await h.receive() == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert not state.connections
    with pytest.raises(OSError):
        await h.send({"type": "websocket.send", "text": "x"})
    h.finish.set()


async def test_protocol_error_fails_with_1002() -> None:
    proto, transport, _, h = await accepted()
    proto.data_received(b"\x81\x02hi")  # unmasked client frame (RFC 6455 §5.1)
    assert transport.writes[0][:4] == b"\x88\x02\x03\xea"
    assert transport.closed  # FakeTransport cannot half-close, so it closes
    assert (await h.receive())["code"] == 1002
    h.finish.set()


async def test_early_frames_delivered_after_accept() -> None:
    early = client_frames(TextMessage(data="early"))
    _proto, _transport, _, h = await start(buffered=early)
    assert await h.receive() == {"type": "websocket.connect"}
    await h.send({"type": "websocket.accept"})
    assert await h.receive() == {"type": "websocket.receive", "text": "early"}
    h.finish.set()


# ------------------------------------------------------------------------------ timers


async def test_ping_pong_keepalive_cycle() -> None:
    proto, transport, _, h = await accepted(ws_ping_interval=7, ws_ping_timeout=3)
    assert proto._timer.armed
    loop = asyncio.get_running_loop()
    assert 6 < proto._timer.when() - loop.time() <= 7
    fire(proto, "_on_ping_timer")
    assert transport.writes == [b"\x89\x00"]
    assert proto._timer.callback.__name__ == "_on_ping_timeout"
    proto.data_received(client_frames(Pong(payload=b"")))
    assert proto._timer.callback.__name__ == "_on_ping_timer"  # re-armed, same handle slot
    h.finish.set()


async def test_ping_timeout_closes_1011() -> None:
    proto, transport, state, h = await accepted(ws_ping_interval=7, ws_ping_timeout=3)
    fire(proto, "_on_ping_timer")
    transport.clear()
    fire(proto, "_on_ping_timeout")
    (event,) = server_events(transport.data)
    assert isinstance(event, CloseConnection) and event.code == 1011
    assert transport.closed
    assert (await h.receive())["code"] == 1011
    await settle()
    assert not state.connections
    h.finish.set()


async def test_ping_timeout_not_blamed_on_peer_while_we_paused_reading() -> None:
    proto, transport, _, h = await accepted(ws_ping_interval=7, ws_ping_timeout=3)
    proto.data_received(client_frames(*(TextMessage(data="m") for _ in range(40))))
    assert not transport.reading
    fire(proto, "_on_ping_timer")
    fire(proto, "_on_ping_timeout")
    assert not transport.closed and proto._timer.callback.__name__ == "_on_ping_timeout"
    h.finish.set()


async def test_connect_timeout_refuses_and_cancels_app() -> None:
    proto, transport, _, _h = await start(ws_connect_timeout=4)
    fire(proto, "_on_connect_timeout")
    assert transport.data.startswith(b"HTTP/1.1 403 ")
    assert transport.closed
    with pytest.raises(asyncio.CancelledError):
        await proto.task  # type: ignore[misc]


# ----------------------------------------------------------------------------- shutdown


async def test_shutdown_open_sends_1001_and_tells_app() -> None:
    proto, transport, state, h = await accepted()
    proto.shutdown()
    (event,) = server_events(transport.data)
    assert isinstance(event, CloseConnection) and event.code == 1001
    assert await h.receive() == {
        "type": "websocket.disconnect",
        "code": 1001,
        "reason": "server shutting down",
    }
    assert not transport.closed  # waits for the client's Close
    proto.data_received(client_frames(CloseConnection(code=1001)))
    assert transport.closed
    await settle()
    assert not state.connections
    h.finish.set()


async def test_shutdown_before_accept_is_503() -> None:
    proto, transport, _, h = await start()
    proto.shutdown()
    assert transport.data.startswith(b"HTTP/1.1 503 ")
    assert transport.closed
    await h.receive()  # connect
    assert (await h.receive())["code"] == 1001
    h.finish.set()


async def test_state_after_close_is_closed() -> None:
    proto, _transport, _, h = await accepted()
    proto.data_received(client_frames(CloseConnection(code=1000)))
    assert proto.conn is not None and proto.conn.state is State.CLOSED
    h.finish.set()


# ------------------------------------------------------------------------- stream splits


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=3000), max_size=10))
def test_any_split_of_the_stream_delivers_the_same_messages(cuts: list[int]) -> None:
    messages = [TextMessage(data=f"m{i}") for i in range(40)] + [
        TextMessage(data="x" * 1000, message_finished=False),
        TextMessage(data="y"),
    ]
    data = client_frames(*messages, CloseConnection(code=1000))

    async def scenario() -> list[Message]:
        proto, transport, _, h = await accepted()
        got: list[Message] = []
        for chunk in _split(data, cuts):
            proto.data_received(chunk)
            while proto.receive.pending:  # an app that keeps up between reads
                got.append(await h.receive())
        assert transport.closed
        h.finish.set()
        return got

    got = asyncio.run(scenario())
    texts = [m.get("text") for m in got if m["type"] == "websocket.receive"]
    assert texts == [f"m{i}" for i in range(40)] + ["x" * 1000 + "y"]
    assert got[-1] == {"type": "websocket.disconnect", "code": 1000, "reason": ""}


async def test_early_bytes_beyond_limit_pause_reading() -> None:
    proto, transport, _, h = await start()
    proto.data_received(b"\x00" * (wsmod.MAX_EARLY_BYTES + 1))
    assert not transport.reading
    h.finish.set()


# ------------------------------------------------------------------------- review hardening


async def test_pongs_held_while_peer_not_reading_then_one_for_latest_ping() -> None:
    # RFC 6455 §5.5.3: only the most recent Ping needs an answer; a peer that pings without
    # reading must not make us buffer one Pong per Ping.
    proto, transport, _, h = await accepted(ws_ping_interval=None)
    transport.fill()
    proto.data_received(b"".join(client_frames(Ping(payload=b"%d" % i)) for i in range(500)))
    assert transport.writes == []
    transport.drain_buffer()
    assert transport.writes == [b"\x8a\x03499"]
    proto.data_received(client_frames(Ping(payload=b"now")))
    assert transport.writes[-1] == b"\x8a\x03now"  # answered directly again
    h.finish.set()


async def test_close_after_peer_close_is_bounded_by_abort_timer() -> None:
    # transport.close() waits to flush; a peer that never reads must not keep us forever.
    proto, transport, _, h = await accepted(ws_ping_interval=None, ws_ping_timeout=3.0)
    proto.data_received(client_frames(CloseConnection(code=1000)))
    assert transport.closed
    assert proto._timer.armed and proto._timer.when() - proto.loop.time() > 2.5
    fire(proto, "_on_close_timeout")
    assert transport.aborted
    await settle()
    assert not proto._timer.armed
    h.finish.set()


async def test_ping_timeout_close_is_bounded_by_abort_timer() -> None:
    proto, transport, _, h = await accepted(ws_ping_interval=1.0, ws_ping_timeout=1.0)
    fire(proto, "_on_ping_timer")
    fire(proto, "_on_ping_timeout")
    assert transport.closed and not transport.aborted
    fire(proto, "_on_close_timeout")
    assert transport.aborted
    h.finish.set()


async def test_late_pong_keeps_the_close_deadline() -> None:
    proto, transport, _, h = await accepted(ws_ping_interval=1.0, ws_ping_timeout=1.0)
    fire(proto, "_on_ping_timer")  # Ping sent, Pong awaited
    await h.send({"type": "websocket.close"})
    proto.data_received(client_frames(Pong(payload=b"")))
    fire(proto, "_on_close_timeout")
    assert transport.aborted
    h.finish.set()
