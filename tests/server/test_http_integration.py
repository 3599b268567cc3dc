"""HttpProtocol over real sockets on 127.0.0.1 with httpx and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from server.protocols.http import BODY_HIGH_WATER, HttpProtocol
from tests.support.live import LiveServer, connect, serve

pytestmark = pytest.mark.timeout(30)

OPTS: dict[str, Any] = {"access_log": False}


# --- helpers ---------------------------------------------------------------------------------


async def read_response(
    reader: asyncio.StreamReader, head_request: bool = False
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 response: (status, lowercased headers, decoded body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if head_request or status in (100, 204, 304):
        return status, headers, b""
    if b"content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers[b"content-length"])), 5)
    elif headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected by these tests
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    else:
        body = await asyncio.wait_for(reader.read(), 5)
    return status, headers, body


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


async def wait_for(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll a server-side condition that has no event of its own (bounded)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.005)


def the_protocol(srv: LiveServer) -> HttpProtocol:
    conns = [c for c in srv.state.connections if isinstance(c, HttpProtocol)]
    assert len(conns) == 1
    return conns[0]


async def echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    payload = b"%s %s %s" % (scope["method"].encode(), scope["path"].encode(), body)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


App = Callable[[Any, Any, Any], Awaitable[None]]


# --- tests -----------------------------------------------------------------------------------


async def test_httpx_keep_alive_and_bodies() -> None:
    async with serve(echo, **OPTS) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        for i in range(3):
            r = await client.post(f"/p{i}", content=b"body%d" % i)
            assert r.status_code == 200 and r.content == b"POST /p%d body%d" % (i, i)
            assert r.headers["server"] == "channels-server" and "date" in r.headers
        assert len(srv.state.connections) == 1  # one kept-alive connection
        assert srv.state.total_requests == 3


async def test_chunked_upload_and_streamed_download() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        total = 0
        while True:
            m = await receive()
            total += len(m["body"])
            if not m["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send(
                {"type": "http.response.body", "body": b"%d:%d;" % (i, total), "more_body": True}
            )
        await send({"type": "http.response.body"})

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with serve(app, **OPTS) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/", content=gen())
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.content == b"".join(b"%d:10000;" % i for i in range(5))


async def test_pipelining_order_raw() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await asyncio.sleep(0.05)  # the app is slow on purpose; nothing to await instead
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    async with serve(app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(
            b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /post HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"
        )
        bodies = [(await read_response(reader))[2] for _ in range(3)]
        assert bodies == [b"/slow", b"/fast", b"/post"]


async def test_repeated_and_mixed_heads_over_a_real_socket() -> None:
    """Identical heads (their field lines served from the parser's line cache), a head that only
    starts like them, a body-carrying request and the same head again, pipelined and one by
    one."""
    get = b"GET /same?q=1 HTTP/1.1\r\nHost: t\r\nAccept: */*\r\n\r\n"
    longer = b"GET /same?q=1 HTTP/1.1\r\nHost: t\r\nAccept: */*\r\nX-More: 1\r\n\r\n"
    post = b"POST /same?q=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
    async with serve(echo, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(get * 3 + longer + post + b"\r\n" + get)
        bodies = [(await read_response(reader))[2] for _ in range(6)]
        assert bodies == [b"GET /same "] * 4 + [b"POST /same body", b"GET /same "]
        for _ in range(3):
            writer.write(get)
            assert (await read_response(reader))[2] == b"GET /same "
        writer.write(get[:9])  # a repeated head arriving in two reads
        await writer.drain()
        await wait_for(lambda: the_protocol(srv).parser.buffered > 0)
        writer.write(get[9:])
        assert (await read_response(reader))[2] == b"GET /same "
        assert srv.state.total_requests == 10


async def test_expect_100_continue_raw() -> None:
    async with serve(echo, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(
            b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        status, _, _ = await read_response(reader)
        assert status == 100
        writer.write(b"data")
        status, _, body = await read_response(reader)
        assert (status, body) == (200, b"POST /e data")


async def test_head_and_http10_raw() -> None:
    async with serve(echo, **OPTS) as srv:
        async with connect(srv) as (reader, writer):
            writer.write(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n")
            status, headers, _ = await read_response(reader, head_request=True)
            assert status == 200 and headers[b"content-length"] == b"8"  # "HEAD /h "
            assert (await read_response(reader))[2] == b"GET /g "
        async with connect(srv) as (reader, writer):
            writer.write(b"GET /old HTTP/1.0\r\n\r\n")
            data = await read_all(reader)  # the server closes: EOF ends the read
            assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"GET /old ")
            assert b"connection: close" in data
        async with connect(srv) as (reader, writer):
            writer.write(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = await read_response(reader)
            assert headers[b"connection"] == b"keep-alive" and body == b"GET /a "
            writer.write(b"GET /b HTTP/1.0\r\n\r\n")
            assert (await read_all(reader)).endswith(b"GET /b ")


async def test_disconnect_delivered_to_app() -> None:
    got = asyncio.get_running_loop().create_future()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # the (empty) body
        got.set_result(await receive())  # blocks until the client goes away

    async with serve(app, **OPTS) as srv:
        async with connect(srv) as (_reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            await wait_for(lambda: srv.state.total_requests == 1)
        assert await asyncio.wait_for(got, 5) == {"type": "http.disconnect"}


async def test_500_on_app_error() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("broken app")

    async with serve(app, **OPTS) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.get("/")
        assert r.status_code == 500


@pytest.mark.parametrize(
    ("request_bytes", "status", "options"),
    [
        (b"BLAH\r\n\r\n", 400, {}),
        (b"GET / HTTP/1.1\r\n\r\n", 400, {}),
        (b"GET /" + b"x" * 10_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, {}),
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-H: v\r\n" * 200 + b"\r\n", 431, {}),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"v" * 70_000 + b"\r\n\r\n", 431, {}),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n",
            413,
            {"limit_request_body": 100},
        ),
        (b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505, {}),
    ],
)
async def test_malformed_requests_raw(
    request_bytes: bytes, status: int, options: dict[str, Any]
) -> None:
    async with serve(echo, **OPTS, **options) as srv, connect(srv) as (reader, writer):
        writer.write(request_bytes)
        data = await read_all(reader)
        assert data.startswith(b"HTTP/1.1 %d " % status), data[:80]


async def test_chunked_upload_over_limit_413() -> None:
    async with (
        serve(echo, **OPTS, limit_request_body=1000) as srv,
        connect(srv) as (reader, writer),
    ):
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            writer.write(b"200\r\n" + b"a" * 512 + b"\r\n")
        data = await read_all(reader)
        assert data.startswith(b"HTTP/1.1 413 ")


async def test_keep_alive_timeout() -> None:
    async with (
        serve(echo, **OPTS, timeout_keep_alive=0.05) as srv,
        connect(srv) as (reader, writer),
    ):
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await read_response(reader)
        assert await read_all(reader) == b""  # EOF: the server closed the idle connection


async def test_request_header_timeout_408() -> None:
    async with (
        serve(echo, **OPTS, timeout_request_header=0.05) as srv,
        connect(srv) as (reader, writer),
    ):
        writer.write(b"GET / HTTP/1.1\r\nHost")
        data = await read_all(reader)
        assert data.startswith(b"HTTP/1.1 408 ")


async def test_slow_loris_trickle_still_times_out() -> None:
    """The head deadline is not reset by activity: trickling bytes does not keep it alive."""
    async with (
        serve(echo, **OPTS, timeout_request_header=0.1) as srv,
        connect(srv) as (reader, writer),
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def trickle() -> None:
            for byte in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.005)  # the attacker's pace, not a wait for the server

        attacker = asyncio.create_task(trickle())
        data = await read_all(reader)  # returns once the server closes
        attacker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await attacker
        assert data.startswith(b"HTTP/1.1 408 ")
        assert loop.time() - started < 3


async def test_limit_concurrency_503() -> None:
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        await echo(scope, receive, send)

    async with serve(app, **OPTS, limit_concurrency=1) as srv, connect(srv) as (r1, w1):
        w1.write(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
        await wait_for(lambda: len(srv.state.tasks) == 1)
        async with connect(srv) as (r2, w2):
            w2.write(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await read_all(r2)).startswith(b"HTTP/1.1 503 ")
        gate.set()
        assert (await read_response(r1))[0] == 200


async def test_health_check() -> None:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True
        await echo(scope, receive, send)

    async with (
        serve(app, **OPTS, health_check_path="/health") as srv,
        httpx.AsyncClient(base_url=srv.url) as client,
    ):
        r = await client.get("/health")
        assert (r.status_code, r.text) == (200, "OK")
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert not called
        r = await client.head("/health")
        assert r.status_code == 200 and r.content == b""
        assert (await client.get("/health?probe=1")).text == "OK"
        assert (await client.get("/other")).text == "GET /other "
        assert called


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_slow_reader_blocks_app_send(chunked: bool) -> None:
    """Write backpressure: a client that does not read makes send() wait (bounded buffer).

    Chunked framing writes each chunk as several parts (size line, payload, CRLF), which go
    through the transport's ``writelines``: on CPython 3.12.0-3.12.8 and 3.13.0-3.13.1 the
    asyncio selector transport never pauses the protocol from ``writelines`` (CPython
    gh-127655), so this case needs the server to run the high-water check itself.
    """
    chunk = b"y" * 65536
    total_chunks = 400  # 26 MB: far more than the socket buffers can hold
    sent = 0
    finished = asyncio.Event()
    length = [] if chunked else [(b"content-length", b"%d" % (len(chunk) * total_chunks))]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": length})
        for _ in range(total_chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += 1
        await send({"type": "http.response.body"})
        finished.set()

    async with serve(app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await wait_for(lambda: bool(srv.state.connections) and the_protocol(srv).flow.write_paused)
        proto = the_protocol(srv)
        blocked_at = sent
        assert blocked_at < total_chunks and not finished.is_set()
        # The server-side buffer stays bounded while the app waits.
        assert proto.transport.get_write_buffer_size() < 8 * 1024 * 1024
        status, _, body = await read_response(reader)
        assert status == 200 and len(body) == len(chunk) * total_chunks
        await asyncio.wait_for(finished.wait(), 5)


async def test_fast_uploader_is_paused_until_app_reads() -> None:
    """Read backpressure: an app that does not receive() pauses reading from the socket."""
    start_reading = asyncio.Event()
    received = 0
    size = 16 * 1024 * 1024

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal received
        await start_reading.wait()
        while True:
            m = await receive()
            received += len(m["body"])
            if not m["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % received})

    async with serve(app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)

        async def upload() -> None:
            block = b"u" * (1024 * 1024)
            for _ in range(size // len(block)):
                writer.write(block)
                await writer.drain()

        uploader = asyncio.create_task(upload())
        await wait_for(lambda: bool(srv.state.connections) and the_protocol(srv).flow.read_paused)
        proto = the_protocol(srv)
        assert not proto.transport.is_reading()
        cycle = proto.cycle
        assert cycle is not None and cycle.body_size < BODY_HIGH_WATER + 4 * 1024 * 1024
        assert not uploader.done()  # the client is stuck: the kernel buffers are full
        start_reading.set()
        await asyncio.wait_for(uploader, 10)
        status, _, body = await read_response(reader)
        assert status == 200 and body == b"%d" % size


async def test_pathsend_real_socket(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "blob.bin"
    path.write_bytes(data)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        await send({"type": "http.response.pathsend", "path": str(path)})

    async with serve(app, **OPTS) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        for _ in range(2):
            r = await client.get("/")
            assert r.content == data and r.headers["content-length"] == str(len(data))
        r = await client.head("/")
        assert r.content == b"" and r.headers["content-length"] == str(len(data))


async def test_zerocopysend_real_socket(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1024
    path = tmp_path / "blob.bin"
    path.write_bytes(data)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.zerocopysend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(path, "rb") as f:  # noqa: ASYNC230 - a test app, local tmp file
            half = len(data) // 2
            await send(
                {"type": "http.response.zerocopysend", "file": f, "count": half, "more_body": True}
            )
            await send({"type": "http.response.zerocopysend", "file": f, "offset": half})

    async with serve(app, **OPTS) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        for _ in range(2):
            r = await client.get("/")
            assert r.content == data


async def test_trailers_raw() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        trailers = "http.response.trailers" in scope["extensions"]
        await send(
            {"type": "http.response.start", "status": 200, "headers": [], "trailers": trailers}
        )
        await send({"type": "http.response.body", "body": b"payload"})
        if trailers:
            await send(
                {
                    "type": "http.response.trailers",
                    "headers": [(b"x-digest", b"abc")],
                    "more_trailers": False,
                }
            )

    async with serve(app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n")
        data = await read_all(reader)
        assert data.endswith(b"\r\n\r\n7\r\npayload\r\n0\r\nx-digest: abc\r\n\r\n")
        assert b"transfer-encoding: chunked" in data


async def test_websocket_upgrade_handoff() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert scope["path"] == "/ws" and scope["query_string"] == b"a=1"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "echo " + message["text"]})
        await receive()

    async with serve(app, **OPTS) as srv, websockets.connect(srv.ws_url + "/ws?a=1") as ws:
        await ws.send("hello")
        assert await ws.recv() == "echo hello"


def test_uvloop_roundtrip(tmp_path: Path) -> None:
    """The same server on uvloop (pathsend takes the read/write fallback there)."""
    uvloop = pytest.importorskip("uvloop")
    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * 300_000)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/file":
            await send({"type": "http.response.pathsend", "path": str(path)})
        else:
            await send({"type": "http.response.body", "body": b"uv"})

    async def main() -> None:
        async with serve(app, **OPTS, timeout_keep_alive=0.05) as srv:
            async with httpx.AsyncClient(base_url=srv.url) as client:
                assert (await client.get("/")).content == b"uv"
                assert (await client.get("/file")).content == b"z" * 300_000
            async with connect(srv) as (reader, writer):
                writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                assert (await read_response(reader))[2] == b"uv"
                assert await read_all(reader) == b""  # keep-alive timer fired on uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
