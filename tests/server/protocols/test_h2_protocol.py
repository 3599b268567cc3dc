"""``H2Protocol`` on a fake transport: the hand-over from the HTTP/1.1 protocol (h2c preface,
ALPN), write backpressure reaching the app's ``send``, idle connections closed with GOAWAY."""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events

from server.config import Config
from server.protocols.h2 import H2Protocol
from server.protocols.http import HttpProtocol
from server.state import ServerState
from server.types import Receive, Scope, Send
from tests.support.fakes import FakeTransport


class _SSLObject:
    def __init__(self, alpn: str | None) -> None:
        self.alpn = alpn

    def selected_alpn_protocol(self) -> str | None:
        return self.alpn


def _client() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    return conn


def _get(conn: h2.connection.H2Connection, path: str = "/") -> int:
    sid = conn.get_next_available_stream_id()
    conn.send_headers(
        sid,
        [
            (b":method", b"GET"),
            (b":path", path.encode()),
            (b":scheme", b"http"),
            (b":authority", b"x"),
        ],
        end_stream=True,
    )
    return sid


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


def _events(client: h2.connection.H2Connection, transport: FakeTransport) -> list[Any]:
    events = client.receive_data(transport.data)
    transport.clear()
    return events


async def test_h2c_preface_hands_the_connection_over() -> None:
    config = Config(app=hello)
    state = ServerState()
    http = HttpProtocol(config, hello, state)
    transport = FakeTransport(http)
    http.connection_made(transport)
    client = _client()
    sid = _get(client)
    http.data_received(client.data_to_send())
    proto = transport.protocol
    assert isinstance(proto, H2Protocol)
    assert state.connections == {proto}
    ended: list[int] = []
    for _ in range(100):  # loop iterations, no wall-clock time: the app task runs meanwhile
        ended += [
            e.stream_id for e in _events(client, transport) if isinstance(e, h2.events.StreamEnded)
        ]
        if ended:
            break
        await asyncio.sleep(0)
    assert ended == [sid]
    proto.shutdown()
    assert transport.closed


async def test_alpn_h2_hands_over_at_connection_made() -> None:
    state = ServerState()
    http = HttpProtocol(Config(app=hello), hello, state)
    transport = FakeTransport(http)
    transport._extra["ssl_object"] = _SSLObject("h2")
    transport._extra["sslcontext"] = object()
    http.connection_made(transport)
    assert isinstance(transport.protocol, H2Protocol)
    # The server preface (SETTINGS) goes out before the client says anything.
    assert transport.data[3] == 0x4


async def test_alpn_http11_and_no_http2_stay_http11() -> None:
    for alpn, enabled in (("http/1.1", True), ("h2", False)):
        http = HttpProtocol(Config(app=hello, http2=enabled), hello, ServerState())
        transport = FakeTransport(http)
        transport._extra["ssl_object"] = _SSLObject(alpn)
        http.connection_made(transport)
        assert transport.protocol is http


async def test_paused_transport_holds_the_app_send() -> None:
    sent: list[str] = []
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        sent.append("first")
        await send({"type": "http.response.body", "body": b"b", "more_body": True})
        sent.append("second")
        release.set()
        await send({"type": "http.response.body", "body": b""})

    proto = H2Protocol(Config(app=app), app, ServerState())
    transport = FakeTransport(proto)
    proto.connection_made(transport)
    client = _client()
    _get(client)
    proto.data_received(client.data_to_send())
    transport.fill()
    for _ in range(20):
        await asyncio.sleep(0)
    assert sent == []  # the first body went out, then its send waited for the drain
    transport.drain_buffer()
    await asyncio.wait_for(release.wait(), 5)
    assert sent == ["first", "second"]


async def test_idle_connection_gets_goaway_and_closes() -> None:
    state = ServerState()
    proto = H2Protocol(Config(app=hello, timeout_request_header=0.01), hello, state)
    transport = FakeTransport(proto)
    proto.connection_made(transport)
    client = _client()
    proto.data_received(client.data_to_send())
    await asyncio.wait_for(state.wait_idle(), 5)  # connection_lost after the idle close
    assert transport.closed
    events = client.receive_data(transport.data)
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
