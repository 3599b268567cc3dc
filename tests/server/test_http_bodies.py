"""Request bodies over real sockets: bodies the app does not read, errors and ``100 Continue``
while the client is still uploading, disconnects mid-body, keep-alive decisions, pipelining
after an error, and apps that outlive their client."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import server.protocols.http as http_module
from server.types import Message, Receive, Scope, Send
from tests.support.http_exchange import echo_app, exchange, read_all, statuses
from tests.support.live import connect, serve

pytestmark = pytest.mark.timeout(30)

OPTS: dict[str, Any] = {"access_log": False}


async def no_read_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers without ever calling receive()."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"path=" + scope["raw_path"]})


def blocking_client(port: int, raw: bytes) -> tuple[bytes, str | None]:
    """A naive client (like many real ones): send the whole request, then read the answer.

    Returns what it read and the first socket error it met (None for a clean exchange).
    """
    error: str | None = None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(raw)
        except OSError as exc:
            error = f"send: {exc!r}"
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:
            error = error or f"recv: {exc!r}"
    return data, error


# --- unread bodies -----------------------------------------------------------------------


async def test_unread_small_body_is_never_parsed_as_a_request() -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    raw = (
        b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
        + smuggled
        + b"GET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    async with serve(no_read_app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert b"/smuggled" not in data
    assert b"path=/first" in data
    assert statuses(data) in ([200], [200, 200])


async def test_unread_chunked_body_is_never_parsed_as_a_request() -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    raw = (
        b"POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(smuggled)
        + smuggled
        + b"\r\n0\r\n\r\n"
    )
    async with serve(no_read_app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"path=/first"), 5)
        writer.write(b"GET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        rest = await read_all(reader)
    assert b"/smuggled" not in head + rest
    assert statuses(head + rest) in ([200], [200, 200])


@pytest.mark.parametrize("size", [200_000, 3_000_000])
async def test_response_survives_an_unread_big_upload(size: int) -> None:
    # The app answers without reading a big body; a client that first sends everything and
    # then reads must still get the whole response, ended by a FIN, not by a reset.
    raw = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    async with serve(no_read_app, **OPTS) as srv:
        data, error = await asyncio.to_thread(blocking_client, srv.port, raw)
    assert statuses(data) == [200]
    assert data.endswith(b"path=/up")
    assert error is None


@pytest.mark.parametrize("chunked", [False, True])
async def test_413_reaches_a_client_still_uploading(chunked: bool) -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await echo_app(scope, receive, send)

    size = 2_000_000
    if chunked:
        piece = b"x" * 50_000
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
        raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        raw += chunk * (size // len(piece)) + b"0\r\n\r\n"
    else:
        raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    async with serve(app, limit_request_body=10_000, **OPTS) as srv:
        data, error = await asyncio.to_thread(blocking_client, srv.port, raw)
    assert statuses(data) == [413]
    assert b"connection: close" in data
    assert error is None
    if not chunked:
        assert calls == []  # Content-Length known up front: the app is never called


async def test_500_reaches_a_client_still_uploading() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    size = 2_000_000
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    async with serve(app, **OPTS) as srv:
        data, error = await asyncio.to_thread(blocking_client, srv.port, raw)
    assert statuses(data) == [500]
    assert error is None


async def test_lingering_connection_is_released_on_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_module, "LINGER_TIMEOUT", 3600.0)
    async with serve(no_read_app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nxx")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5)  # response, then our FIN
        (conn,) = srv.state.connections  # still there, discarding the rest of the body
        conn.shutdown()  # what the runtime does on a graceful stop: no waiting for the client
        await asyncio.wait_for(srv.state.wait_idle(), 10)


# --- keep-alive decisions ------------------------------------------------------------------


async def test_connection_close_from_client_is_honoured() -> None:
    async with serve(echo_app, **OPTS) as srv:
        data = await exchange(
            srv,
            b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
        )
    assert statuses(data) == [200]
    assert b"connection: close" in data and b"/b" not in data


async def test_http10_keep_alive_and_default_close() -> None:
    async with serve(echo_app, **OPTS) as srv:
        data = await exchange(
            srv,
            b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            b"GET /b HTTP/1.0\r\n\r\n"
            b"GET /c HTTP/1.0\r\n\r\n",
        )
    assert statuses(data) == [200, 200]
    first, second = data.split(b"HTTP/1.1 200 OK")[1:]
    assert b"connection: keep-alive" in first
    assert b"connection: close" in second
    assert data.endswith(b"GET /b ")


async def test_pipelined_requests_after_an_error_are_not_served() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await echo_app(scope, receive, send)

    async with serve(app, **OPTS) as srv:
        data = await exchange(
            srv,
            b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: a\r\n\r\n",
        )
    assert statuses(data) == [200, 400]
    assert calls == ["/a"]


# --- http.disconnect -----------------------------------------------------------------------


async def test_receive_after_response_returns_disconnect_at_once() -> None:
    got: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        got.append(await asyncio.wait_for(receive(), 5))

    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert statuses(data) == [200]
    assert got == [{"type": "http.disconnect"}]


async def test_client_leaving_mid_body_gives_body_then_disconnect() -> None:
    got: list[Message] = []
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            got.append(message)
            if message["type"] == "http.disconnect":
                break
        done.set()
        # ASGI: sends after a disconnect are no-ops, not errors.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    async with serve(app, **OPTS) as srv:
        async with connect(srv) as (_reader, writer):
            writer.write(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
        await asyncio.wait_for(done.wait(), 5)
    body = b"".join(m.get("body", b"") for m in got if m["type"] == "http.request")
    assert body == b"abc"
    assert got[-1] == {"type": "http.disconnect"}


def test_lingering_close_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        size = 2_000_000
        raw = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
        async with serve(no_read_app, **OPTS) as srv:
            data, error = await asyncio.to_thread(blocking_client, srv.port, raw)
        assert statuses(data) == [200] and data.endswith(b"path=/up")
        assert error is None
        async with serve(no_read_app, limit_request_body=1000, **OPTS) as srv:
            data, error = await asyncio.to_thread(blocking_client, srv.port, raw)
        assert statuses(data) == [413]
        assert error is None

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def wait_until(predicate: Any, limit: float = 10.0) -> None:
    """Poll a server-side state that has no event of its own (bounded)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_pipelining_client_that_does_not_read_is_not_buffered_without_bound() -> None:
    # Each response is complete in one send (so the app never waits for drain); the server
    # must still stop taking pipelined requests while the client reads nothing.
    count, size = 40, 512 * 1024
    payload = b"p" * size
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode() + payload})

    requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(count))
    async with serve(app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(requests)
        await writer.drain()

        def stalled() -> bool:
            conns = list(srv.state.connections)
            return bool(conns) and all(
                c.flow.write_paused and c.cycle is None  # type: ignore[attr-defined]
                for c in conns
            )

        await wait_until(stalled)
        assert len(calls) < count  # at most what the socket buffers hold, not everything
        for i in range(count):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            data = await asyncio.wait_for(reader.readexactly(length), 10)
            assert data.startswith(b"/%d" % i) and len(data) == length
    assert calls == [f"/{i}" for i in range(count)]


async def test_expect_continue_is_not_answered_with_100_before_a_413() -> None:
    async with serve(echo_app, limit_request_body=100, **OPTS) as srv:
        data = await exchange(
            srv,
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
        )
    assert statuses(data) == [413]
    assert b"100 Continue" not in data


async def test_expect_continue_app_answering_without_reading_gets_no_100() -> None:
    async with serve(no_read_app, **OPTS) as srv:
        data = await exchange(
            srv,
            b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
        )
    # The body never came (the client waits for 100): the response ends the exchange and the
    # connection, since the unread body would otherwise be parsed as the next request.
    assert statuses(data) == [200] and data.endswith(b"path=/x")
    assert b"connection: close" in data and b"100 Continue" not in data


# --- apps that ignore the disconnect ---------------------------------------------------------


async def test_app_ignoring_disconnect_is_cancelled_after_application_close_timeout() -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never looks at receive()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async with serve(app, application_close_timeout=0.05, **OPTS) as srv:
        async with connect(srv) as (_reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(started.wait(), 5)
        (task,) = srv.state.tasks
        done, _pending = await asyncio.wait([task], timeout=10)
        assert done and outcome == ["cancelled"]  # by the timer, not by serve()'s cleanup


async def test_tight_streaming_loop_after_disconnect_does_not_freeze_the_server() -> None:
    # Sends after a disconnect are no-ops; if they never yielded, this app would hold the
    # event loop forever and nothing (not even the cancel timer) could run again.
    started = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async with serve(app, application_close_timeout=0.05, **OPTS) as srv:
        async with connect(srv) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(started.wait(), 5)
            await reader.readexactly(100)
        (task,) = srv.state.tasks
        done, _pending = await asyncio.wait([task], timeout=10)
        assert done and outcome == ["cancelled"]
        # the server still answers other clients
        async with connect(srv) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert statuses(head) == [200]
