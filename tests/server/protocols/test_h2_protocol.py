"""``H2Protocol`` on a fake transport: the hand-over from the HTTP/1.1 protocol (h2c preface,
ALPN), write backpressure reaching the app's ``send``, idle connections closed with GOAWAY."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        transport._extra["sslcontext"] = object()
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


async def test_streams_answered_in_one_loop_turn_share_one_write() -> None:
    proto = H2Protocol(Config(app=hello), hello, ServerState())
    transport = FakeTransport(proto)
    proto.connection_made(transport)
    client = _client()
    client.receive_data(transport.data)
    transport.clear()
    sids = [_get(client) for _ in range(10)]
    proto.data_received(client.data_to_send())
    for _ in range(10):  # loop turns: the apps run, then the turn's one write
        await asyncio.sleep(0)
    assert len(transport.writes) == 1
    ended = [
        e.stream_id for e in _events(client, transport) if isinstance(e, h2.events.StreamEnded)
    ]
    assert ended == sids


async def test_a_large_body_is_written_before_its_send_returns() -> None:
    # Past WRITE_BATCH the output is written at once, so the transport's water marks (and
    # pause_writing) see it while the app is still in send.
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 100_000, "more_body": True})
        seen.append(len(transport.writes))
        await send({"type": "http.response.body", "body": b""})

    proto = H2Protocol(Config(app=app), app, ServerState())
    transport = FakeTransport(proto)
    proto.connection_made(transport)
    client = _client()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**20})
    client.increment_flow_control_window(2**20)
    client.receive_data(transport.data)
    transport.clear()
    _get(client)
    proto.data_received(client.data_to_send())
    for _ in range(10):
        await asyncio.sleep(0)
    assert seen and seen[0] >= 1


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


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("get"), st.sampled_from(["/", "/echo", "/x?y"])),
        st.tuples(st.just("post"), st.binary(max_size=3000)),
        st.tuples(st.just("data"), st.binary(max_size=3000)),
        st.tuples(st.just("end"), st.none()),
        st.tuples(st.just("reset"), st.none()),
        st.tuples(st.just("ping"), st.none()),
        st.tuples(st.just("window"), st.integers(min_value=1, max_value=100_000)),
        st.tuples(st.just("junk"), st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("spin"), st.none()),
    ),
    max_size=25,
)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body[:100], "more_body": True})
    await send({"type": "http.response.body", "body": body[100:]})


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS)
def test_any_client_behaviour_leaves_the_protocol_consistent(ops: list[tuple[str, object]]) -> None:
    """Random client actions (valid frames from h2, and raw junk): nothing escapes
    ``data_received``, every app task ends, and the connection is released."""

    async def scenario() -> None:
        state = ServerState()
        proto = H2Protocol(Config(app=echo, application_close_timeout=0.5), echo, state)
        transport = FakeTransport(proto)
        proto.connection_made(transport)
        client = _client()
        proto.data_received(client.data_to_send())
        open_sids: list[int] = []
        for op, arg in ops:
            try:
                if op == "get":
                    open_sids.append(_get(client, str(arg)))
                elif op == "post":
                    sid = client.get_next_available_stream_id()
                    client.send_headers(
                        sid,
                        [
                            (b":method", b"POST"),
                            (b":path", b"/echo"),
                            (b":scheme", b"http"),
                            (b":authority", b"x"),
                        ],
                    )
                    window = client.local_flow_control_window(sid)
                    client.send_data(sid, bytes(arg)[: min(window, 16384)])  # type: ignore[arg-type]
                    open_sids.append(sid)
                elif op == "data" and open_sids:
                    sid = open_sids[-1]
                    window = client.local_flow_control_window(sid)
                    client.send_data(sid, bytes(arg)[: min(window, 16384)])  # type: ignore[arg-type]
                elif op == "end" and open_sids:
                    client.end_stream(open_sids.pop())
                elif op == "reset" and open_sids:
                    client.reset_stream(open_sids.pop())
                elif op == "ping":
                    client.ping(b"12345678")
                elif op == "window":
                    client.increment_flow_control_window(int(arg))  # type: ignore[call-overload]
            except h2.exceptions.H2Error:
                pass  # the client's own state machine refused: nothing was sent
            out = client.data_to_send()
            if op == "junk":
                out += bytes(arg)  # type: ignore[arg-type]
            if out and not transport.closed:
                proto.data_received(out)
            if op == "spin":
                await asyncio.sleep(0)
            if transport.writes:
                with contextlib.suppress(h2.exceptions.H2Error):
                    client.receive_data(transport.data)
                transport.clear()
        if not transport.closed:
            proto.shutdown()
        if not transport.closed:
            transport.peer_closed()  # the client goes away with streams still open
        # Everything ends: every app sees a disconnect (or finished before) and returns.
        if state.tasks:
            await asyncio.wait_for(asyncio.gather(*state.tasks, return_exceptions=True), 5)
        await asyncio.sleep(0)
        assert not state.connections
        assert not proto.streams

    asyncio.run(scenario())
