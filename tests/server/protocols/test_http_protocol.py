"""HttpProtocol against a FakeTransport: exact bytes, one write per send, flow control,
timers, the receive contract and error handling (no sockets involved)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.config import Config
from server.protocols.http import BODY_HIGH_WATER, PIPELINE_HIGH_WATER, HttpProtocol
from server.state import ServerState
from tests.support.fakes import FakeTransport

App = Callable[[Any, Any, Any], Awaitable[None]]

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def make(app: App, **options: Any) -> tuple[HttpProtocol, FakeTransport, ServerState]:
    options.setdefault("date_header", False)
    options.setdefault("server_header", False)
    config = Config(app=app, **options)
    state = ServerState()
    proto = HttpProtocol(config, app, state, asyncio.get_running_loop())
    transport = FakeTransport(proto)
    proto.connection_made(transport)
    return proto, transport, state


async def settle(state: ServerState) -> None:
    """Wait until every app task of this server has finished."""
    while state.tasks:
        await asyncio.wait(list(state.tasks))


async def until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate`` holds (bounded; no sleeping)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"1")]})
    await send({"type": "http.response.body", "body": b"hi"})


def gated_hello(gate: asyncio.Event) -> App:
    """``hello``, once ``gate`` is set."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        await hello(scope, receive, send)

    return app


def recording_hello(scopes: list[Any]) -> App:
    """``hello``, keeping every scope in ``scopes``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    return app


async def test_simple_response_exact_bytes_single_write() -> None:
    proto, t, state = make(hello)
    assert proto in state.connections
    proto.data_received(GET)
    await settle(state)
    assert t.writes == [b"HTTP/1.1 200 OK\r\nx: 1\r\ncontent-length: 2\r\n\r\nhi"]
    assert not t.closed and state.total_requests == 1


async def test_date_and_server_headers() -> None:
    proto, t, state = make(hello, date_header=True, server_header=True, server_name="srv")
    proto.data_received(GET)
    await settle(state)
    head = t.data.split(b"\r\n\r\n")[0]
    assert b"\r\ndate: " in head and head.endswith(b"GMT\r\nserver: srv\r\ncontent-length: 2")


async def test_streaming_one_write_per_send() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"bb", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert t.writes == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n",
        b"2\r\nbb\r\n",
        b"0\r\n\r\n",
    ]


async def test_large_body_single_writelines_call() -> None:
    big = b"x" * 100_000

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": big})

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert len(t.writes) == 1
    assert t.writes[0] == b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + big


async def test_pipelined_requests_answered_in_order() -> None:
    release = asyncio.Event()
    started: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(scope["path"])
        if scope["path"] == "/slow":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    proto, t, state = make(app)
    proto.data_received(
        b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    await until(lambda: started == ["/slow"])
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == ["/slow"] and t.writes == []  # the second waits for the first
    release.set()
    await until(lambda: len(t.writes) == 2)
    await settle(state)
    assert t.writes[0].endswith(b"/slow") and t.writes[1].endswith(b"/fast")


async def test_request_body_and_receive_arm_contract() -> None:
    got: list[Any] = []
    armed: asyncio.Future[Any] | None = None
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal armed
        loop = asyncio.get_running_loop()
        # 1) arm before data: resolved later by data_received, no task in between
        armed = loop.create_future()
        receive.arm(armed)
        got.append(await armed)
        # 2) a cancelled future must not swallow the message
        cancelled = loop.create_future()
        receive.arm(cancelled)
        cancelled.cancel()
        await done.wait()
        got.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})
        # 3) after the response: http.disconnect, immediately, also via arm
        fut = loop.create_future()
        receive.arm(fut)
        got.append(fut.result())

    proto, t, state = make(app)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n")
    await until(lambda: armed is not None)
    proto.data_received(b"abc")
    await until(lambda: len(got) == 1)
    assert got[0] == {"type": "http.request", "body": b"abc", "more_body": True}
    proto.data_received(b"def")
    done.set()
    await settle(state)
    assert got[1] == {"type": "http.request", "body": b"def", "more_body": False}
    assert got[2] == {"type": "http.disconnect"}
    assert t.data == b"HTTP/1.1 204 No Content\r\n\r\n"


async def test_chunked_request_body() -> None:
    bodies: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            m = await receive()
            body += m["body"]
            if not m["more_body"]:
                break
        bodies.append(body)
        await hello(scope, receive, send)

    proto, _t, state = make(app)
    proto.data_received(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    proto.data_received(b"2\r\nde\r\n0\r\n\r\n")
    await settle(state)
    assert bodies == [b"abcde"]


async def test_expect_100_continue_only_when_app_reads() -> None:
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        m = await receive()
        assert m["body"] == b"xyz"
        await hello(scope, receive, send)

    proto, t, state = make(app)
    proto.data_received(
        b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    )
    for _ in range(5):
        await asyncio.sleep(0)
    assert t.writes == []
    gate.set()
    await until(lambda: bool(t.writes))
    assert t.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    proto.data_received(b"xyz")
    await settle(state)
    assert t.writes[1].startswith(b"HTTP/1.1 200 OK")


async def test_no_100_continue_if_app_answers_without_reading() -> None:
    proto, t, state = make(hello)
    proto.data_received(
        b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    )
    await settle(state)
    assert t.data.startswith(b"HTTP/1.1 200 OK") and b"100 Continue" not in t.data
    await until(lambda: t.closed)  # the unread body makes the connection unusable


async def test_head_writes_no_body() -> None:
    proto, t, state = make(hello)
    proto.data_received(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle(state)
    assert t.writes == [b"HTTP/1.1 200 OK\r\nx: 1\r\ncontent-length: 2\r\n\r\n"]


async def test_http10_close_delimited() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["http_version"] == "1.0"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    proto, t, state = make(app)
    proto.data_received(b"GET / HTTP/1.0\r\n\r\n")
    await settle(state)
    assert t.data == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nab"
    assert t.closed


async def test_write_backpressure_blocks_send() -> None:
    progress: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            progress.append(i)
        await send({"type": "http.response.body"})

    proto, t, state = make(app)
    t.fill()
    proto.data_received(GET)
    await until(lambda: len(t.writes) == 1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert progress == []  # the first send wrote, then waits for drain
    t.drain_buffer()
    await settle(state)
    assert progress == [0, 1, 2]


async def test_read_backpressure_pauses_and_resumes() -> None:
    reading = asyncio.Event()
    total = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal total
        await reading.wait()
        while True:
            m = await receive()
            total += len(m["body"])
            if not m["more_body"]:
                break
        await hello(scope, receive, send)

    size = 4 * BODY_HIGH_WATER
    proto, t, state = make(app)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
    chunk = b"z" * 16384
    sent = 0
    while t.reading and sent < size:
        proto.data_received(chunk)
        sent += len(chunk)
    assert not t.reading and BODY_HIGH_WATER <= sent < size
    reading.set()
    await until(lambda: t.reading)
    while sent < size:
        proto.data_received(chunk)
        sent += len(chunk)
        await asyncio.sleep(0)
    await settle(state)
    assert total == size and t.data.startswith(b"HTTP/1.1 200 OK")


async def test_disconnect_delivered_and_sends_become_noops() -> None:
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append(await receive())
        events.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    proto, t, state = make(app)
    proto.data_received(GET)
    await until(lambda: len(events) == 1)
    t.peer_closed()
    await settle(state)
    assert events == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]
    assert t.writes == [] and proto not in state.connections


async def test_500_when_app_raises_before_response(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    proto, t, state = make(app)
    with caplog.at_level(logging.ERROR, logger="server.http"):
        proto.data_received(GET)
        await settle(state)
    assert t.data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"connection: close" in t.data and t.closed
    assert "boom" in caplog.text


async def test_500_when_app_returns_without_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert t.data.startswith(b"HTTP/1.1 500 ")


async def test_abrupt_close_when_app_fails_mid_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("boom")

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert t.closed and not t.data.endswith(b"0\r\n\r\n")
    assert b"500" not in t.data


async def test_invalid_message_from_app_gives_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.body", "body": b"no start"})

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert t.data.startswith(b"HTTP/1.1 500 ")


@pytest.mark.parametrize(
    ("data", "status", "options"),
    [
        (b"NOT HTTP\r\n\r\n", 400, {}),
        (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, {"limit_request_line": 64}),
        (b"GET / HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\n\r\n", 431, {"limit_request_headers": 2}),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\n",
            413,
            {"limit_request_body": 10},
        ),
    ],
)
async def test_client_errors(
    data: bytes, status: int, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    proto, t, state = make(app, **options)
    with caplog.at_level(logging.INFO):
        proto.data_received(data)
        await settle(state)
    assert t.data.startswith(b"HTTP/1.1 %d " % status)
    assert b"connection: close" in t.data and t.closed and not called
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_chunked_body_over_limit_mid_stream() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            m = await receive()
            seen.append(m)
            if m["type"] == "http.disconnect" or not m.get("more_body"):
                break

    proto, t, state = make(app, limit_request_body=8)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    proto.data_received(b"5\r\nabcde\r\n")
    await until(lambda: bool(seen))
    proto.data_received(b"5\r\nfghij\r\n")
    await settle(state)
    assert t.data.startswith(b"HTTP/1.1 413 ")
    assert seen[-1] == {"type": "http.disconnect"}


async def test_keep_alive_timeout_closes_idle_connection() -> None:
    proto, t, state = make(hello, timeout_keep_alive=0.01)
    proto.data_received(GET)
    await settle(state)
    assert not t.closed
    await until_closed(t)
    assert t.data.count(b"HTTP/1.1") == 1  # nothing written on keep-alive expiry


async def until_closed(t: FakeTransport, limit: float = 2.0) -> None:
    try:
        await asyncio.wait_for(t.closed_event.wait(), limit)
    except TimeoutError:
        raise AssertionError("transport never closed") from None


async def test_request_header_timeout_sends_408() -> None:
    proto, t, _state = make(hello, timeout_request_header=0.01)
    proto.data_received(b"GET / HTTP/1.1\r\nHo")
    await until_closed(t)
    assert t.data.startswith(b"HTTP/1.1 408 Request Timeout")


async def test_silent_connection_closed_without_408() -> None:
    _proto, t, _state = make(hello, timeout_request_header=0.01)
    await until_closed(t)
    assert t.data == b""


async def test_shutdown_idle_closes_after_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    # More shutdown cases (the request racing the close): tests/server/protocols/
    # test_http_shutdown.py.
    monkeypatch.setattr("server.protocols.http.SHUTDOWN_IDLE_GRACE", 0.01)
    proto, t, _state = make(hello)
    proto.shutdown()
    assert not t.closed
    await until_closed(t)
    assert t.data == b""


async def test_shutdown_in_flight_finishes_response_then_closes() -> None:
    gate = asyncio.Event()
    app = gated_hello(gate)
    proto, t, state = make(app)
    proto.data_received(GET)
    await asyncio.sleep(0)
    proto.shutdown()
    assert not t.closed
    gate.set()
    await settle(state)
    assert t.data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in t.data
    assert t.closed


async def test_limit_concurrency_503() -> None:
    gate = asyncio.Event()
    app = gated_hello(gate)
    config = Config(app=app, limit_concurrency=1, date_header=False, server_header=False)
    state = ServerState()
    loop = asyncio.get_running_loop()
    p1 = HttpProtocol(config, app, state, loop)
    t1 = FakeTransport(p1)
    p1.connection_made(t1)
    p1.data_received(GET)
    p2 = HttpProtocol(config, app, state, loop)
    t2 = FakeTransport(p2)
    p2.connection_made(t2)
    p2.data_received(GET)
    assert t2.data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and t2.closed
    gate.set()
    await settle(state)
    assert t1.data.startswith(b"HTTP/1.1 200 OK")


async def test_health_check_path() -> None:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True
        await hello(scope, receive, send)

    proto, t, state = make(app, health_check_path="/healthz")
    proto.data_received(
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    await settle(state)
    assert not called
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 2\r\n\r\n"
    )
    assert t.writes == [head + b"OK", head]
    proto.data_received(b"GET /healthz/x HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle(state)
    assert called


async def test_scope_state_and_extensions() -> None:
    scopes: list[Any] = []
    app = recording_hello(scopes)
    proto, _t, state = make(app)
    state.lifespan_state["x"] = 1
    proto.data_received(GET + b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n")
    await settle(state)
    await until(lambda: len(scopes) == 2)
    await settle(state)
    assert scopes[0]["state"] == {"x": 1} and scopes[0]["state"] is not state.lifespan_state
    assert scopes[0]["extensions"] == {
        "http.response.pathsend": {},
        "http.response.zerocopysend": {},
    }
    assert "http.response.trailers" in scopes[1]["extensions"]


async def test_trailers_bytes() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"abc"})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"9")]})

    proto, t, state = make(app)
    proto.data_received(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n")
    await settle(state)
    assert t.writes == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n",
        b"0\r\nx-sum: 9\r\n\r\n",
    ]


async def test_pathsend_fallback_on_fake_transport(tmp_path: Any) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"file-content")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert t.data == b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nfile-content"
    assert not t.closed


async def test_access_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="server.access"):
        proto, _t, state = make(hello)
        proto.data_received(b"GET /p?q=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        await settle(state)
    assert '127.0.0.1:50000 - "GET /p?q=1 HTTP/1.1" 200' in caplog.text


async def test_upgrade_to_other_protocol_is_plain_http() -> None:
    scopes: list[Any] = []
    app = recording_hello(scopes)
    proto, t, state = make(app)
    proto.data_received(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    await settle(state)
    assert scopes[0]["type"] == "http" and t.data.startswith(b"HTTP/1.1 200 OK")
    proto.data_received(GET)  # still usable afterwards
    await until(lambda: len(scopes) == 2)
    await settle(state)


PIPELINE = (
    b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
    b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
    b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    b"HEAD /d HTTP/1.1\r\nHost: t\r\n\r\n"
)


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        m = await receive()
        body += m["body"]
        if not m["more_body"]:
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode() + body})


async def run_split(cuts: list[int]) -> bytes:
    proto, t, state = make(echo_app)
    points = sorted(set(cuts))
    for a, b in zip([0, *points], [*points, len(PIPELINE)], strict=True):
        if a < b:
            proto.data_received(PIPELINE[a:b])
            await asyncio.sleep(0)
    await until(lambda: t.data.count(b"HTTP/1.1 200") == 4)
    await settle(state)
    return t.data


@given(st.lists(st.integers(min_value=0, max_value=len(PIPELINE)), max_size=8))
@settings(max_examples=40, deadline=None)
def test_any_split_of_pipelined_stream_gives_same_responses(cuts: list[int]) -> None:
    expected = asyncio.run(run_split([]))
    assert expected.endswith(b"content-length: 2\r\n\r\n")  # HEAD: length only, no body
    assert asyncio.run(run_split(cuts)) == expected


async def test_body_that_arrived_before_disconnect_is_not_lost() -> None:
    gate = asyncio.Event()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        seen.append(await receive())
        seen.append(await receive())

    proto, t, state = make(app)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
    t.peer_closed()
    gate.set()
    await settle(state)
    assert seen == [
        {"type": "http.request", "body": b"abc", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_zerocopysend_chunked_with_offset_and_count(tmp_path: Any) -> None:
    path = tmp_path / "z.txt"
    path.write_bytes(b"0123456789")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(path, "rb") as f:  # noqa: ASYNC230 - a test app, local tmp file
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": f,
                    "offset": 2,
                    "count": 3,
                    "more_body": True,
                }
            )
            f.seek(7)
            await send({"type": "http.response.zerocopysend", "file": f})  # from position to EOF

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert t.data == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n234\r\n3\r\n789\r\n0\r\n\r\n"
    )
    assert not t.closed


async def test_zerocopysend_short_file_breaks_connection(tmp_path: Any) -> None:
    path = tmp_path / "short.txt"
    path.write_bytes(b"abc")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(path, "rb") as f:  # noqa: ASYNC230 - a test app, local tmp file
            await send({"type": "http.response.zerocopysend", "file": f, "count": 10})

    proto, t, state = make(app)
    proto.data_received(GET)
    await settle(state)
    assert t.data == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
    assert t.closed  # the client sees 3 of 10 promised bytes, then EOF


async def feed_random(chunks: list[bytes]) -> FakeTransport:
    proto, t, state = make(echo_app)
    for chunk in chunks:
        if t.closed:
            break
        proto.data_received(chunk)  # must never raise, whatever the bytes
        await asyncio.sleep(0)
    await settle(state)
    return t


@given(st.lists(st.binary(max_size=64), max_size=6), st.sampled_from([b"", PIPELINE[:40]]))
@settings(max_examples=80, deadline=None)
def test_random_input_never_crashes_the_protocol(chunks: list[bytes], prefix: bytes) -> None:
    t = asyncio.run(feed_random([prefix, *chunks]))
    if t.data:
        status = int(t.data.split(b" ", 2)[1])
        assert status in (200, 400, 413, 414, 431, 501, 505)


async def test_pipelined_backlog_pauses_reading() -> None:
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        await hello(scope, receive, send)

    proto, t, state = make(app)
    proto.data_received(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.sleep(0)
    padded = b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"
    backlog = padded * (PIPELINE_HIGH_WATER // len(padded) + 4)
    for i in range(0, len(backlog), 4096):
        proto.data_received(backlog[i : i + 4096])
    assert not t.reading  # more than PIPELINE_HIGH_WATER waits behind the slow request
    release.set()
    await until(lambda: t.reading)
    await until(lambda: t.data.count(b"HTTP/1.1 200 OK") == 1 + backlog.count(b"GET"))
    await settle(state)


async def test_repeated_head_scopes_are_independent_and_complete() -> None:
    """The parser reuses the (name, value) pairs of field lines it saw before (request.py's
    line cache): every request still gets its own scope and header list, and an app changing
    them affects nothing."""
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        scope["headers"].append((b"x-mutated", b"1"))
        assert await receive() == {"type": "http.request", "body": b"", "more_body": False}
        await hello(scope, receive, send)

    proto, t, state = make(app)
    head = b"GET /p?q=1 HTTP/1.1\r\nHost: t\r\nAccept: */*\r\n\r\n"
    proto.data_received(head)
    await settle(state)
    proto.data_received(head + head)  # pipelined repeats
    await until(lambda: len(t.writes) == 3)
    await settle(state)
    proto.data_received(head)
    await until(lambda: len(t.writes) == 4)
    await settle(state)
    assert len(scopes) == 4 and len({id(s["headers"]) for s in scopes}) == 4
    for scope in scopes:
        assert scope["path"] == "/p" and scope["query_string"] == b"q=1"
        assert scope["headers"] == [(b"host", b"t"), (b"accept", b"*/*"), (b"x-mutated", b"1")]
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in t.writes)
    assert state.total_requests == 4 and not t.closed


@pytest.mark.parametrize("outcome", ["response", "exception", "cancelled"])
async def test_request_task_leaves_the_server_state_when_it_ends(outcome: str) -> None:
    """The request task takes itself out of state.tasks (no done callback); whichever way the
    app ends, nothing stays behind to count against --limit-concurrency."""
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if outcome == "exception":
            raise RuntimeError("boom")
        if outcome == "cancelled":
            await release.wait()  # until the close timeout cancels it
        await hello(scope, receive, send)

    proto, _t, state = make(app, application_close_timeout=0.0)
    proto.data_received(GET)
    (task,) = state.tasks
    if outcome == "cancelled":
        coro = task.get_coro()
        await until(lambda: inspect.getcoroutinestate(coro) == inspect.CORO_SUSPENDED)  # type: ignore[arg-type]
        proto.connection_lost(None)
    await asyncio.wait([task])
    assert task.cancelled() == (outcome == "cancelled")
    assert not state.tasks
