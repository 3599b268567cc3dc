"""The protocols record their own traffic into the active recorder (no wrapper around the app
or the connection): real sockets, in process, scraped through ``ServerCollector``."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from server.metrics import recorder
from server.metrics.collector import ServerCollector
from server.metrics.recorder import Recorder
from tests.support.h2client import H2Client
from tests.support.live import LiveServer, serve
from tests.support.metrics import Samples, collect, value
from tests.support.polling import eventually

METERED = {"metrics_port": 0, "access_log": False}  # what --metrics-port switches on


@pytest.fixture
def rec() -> Iterator[Recorder]:
    previous = recorder.active
    recorder.active = Recorder()
    try:
        yield recorder.active
    finally:
        recorder.active = previous


def scrape() -> Samples:
    return collect(ServerCollector())


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            if message.get("text") == "close":
                await send({"type": "websocket.close", "code": 4001})
                return
            await send({"type": "websocket.send", "text": message["text"]})
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"got %d" % len(body)})


def exchange(srv: LiveServer, requests: bytes) -> bytes:
    """Send ``requests`` on one connection (the last says close) and read until EOF."""
    with socket.create_connection((srv.host, srv.port)) as sock:
        sock.sendall(requests)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


async def test_http_requests_durations_and_exact_bytes(rec: Recorder) -> None:
    requests = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    )
    async with serve(app, **METERED) as srv:
        received = await asyncio.to_thread(exchange, srv, requests)
        assert received.count(b"HTTP/1.1 ") == 3 and received.endswith(b"got 5")
        await eventually(lambda: not srv.state.connections)
    s = scrape()
    assert value(s, "channels_server_requests_total", method="GET", status="2xx") == 1
    assert value(s, "channels_server_requests_total", method="GET", status="4xx") == 1
    assert value(s, "channels_server_requests_total", method="POST", status="2xx") == 1
    # Every response is timed, as it completes.
    assert value(s, "channels_server_request_duration_seconds_count") == 3
    assert value(s, "channels_server_request_duration_seconds_bucket", le="10.0") == 3
    assert 0 < value(s, "channels_server_request_duration_seconds_sum") < 10
    # Byte for byte what crossed the socket.
    assert value(s, "channels_server_received_bytes_total", protocol="http") == len(requests)
    assert value(s, "channels_server_sent_bytes_total", protocol="http") == len(received)


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
async def test_file_bodies_and_trailers_count_every_byte(
    rec: Recorder, tmp_path: Path, loop_name: str
) -> None:
    # pathsend goes through loop.sendfile on asyncio and through reads and writes on uvloop.
    path = tmp_path / "body.bin"
    path.write_bytes(os.urandom(300_000))

    async def files(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if scope["path"] == "/file":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.pathsend", "path": str(path)})
            return
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-check", b"1")]})

    requests = (
        b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n"
    )

    async def run() -> bytes:
        async with serve(files, **METERED) as srv:
            received = await asyncio.to_thread(exchange, srv, requests)
            await eventually(lambda: not srv.state.connections)
        return received

    if loop_name == "uvloop":
        import uvloop

        received = await asyncio.to_thread(uvloop.run, run())
    else:
        received = await run()
    assert received.endswith(b"x-check: 1\r\n\r\n") and len(received) > 300_000
    s = scrape()
    assert value(s, "channels_server_sent_bytes_total", protocol="http") == len(received)
    assert value(s, "channels_server_request_duration_seconds_count") == 2


async def test_server_made_responses_and_refusals(rec: Recorder) -> None:
    async with serve(app, limit_request_line=50, health_check_path="/health", **METERED) as srv:
        health = await asyncio.to_thread(
            exchange, srv, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        too_long = await asyncio.to_thread(
            exchange, srv, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        await eventually(lambda: not srv.state.connections)
    assert health.startswith(b"HTTP/1.1 200 ") and too_long.startswith(b"HTTP/1.1 414 ")
    s = scrape()
    assert value(s, "channels_server_requests_total", method="GET", status="2xx") == 1
    assert value(s, "channels_server_refused_total", limit="request_line") == 1
    sent = value(s, "channels_server_sent_bytes_total", protocol="http")
    assert sent == len(health) + len(too_long)


async def test_open_connections_are_read_from_the_server_state(rec: Recorder) -> None:
    async with serve(app, **METERED) as srv:
        rec.state = srv.state
        idle = [socket.create_connection((srv.host, srv.port)) for _ in range(2)]
        try:
            await eventually(lambda: len(srv.state.connections) == 2)
            s = scrape()
            assert value(s, "channels_server_connections_open", protocol="http") == 2
            assert value(s, "channels_server_connections_open", protocol="websocket") == 0
            async with connect(srv.ws_url + "/") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                s = scrape()
                assert value(s, "channels_server_connections_open", protocol="websocket") == 1
                assert value(s, "channels_server_connections_open", protocol="http") == 2
        finally:
            for sock in idle:
                sock.close()
        await eventually(lambda: not srv.state.connections)
        s = scrape()
        assert value(s, "channels_server_connections_open", protocol="http") == 0
        assert value(s, "channels_server_connections_open", protocol="websocket") == 0


async def test_websocket_messages_handshake_and_close(rec: Recorder) -> None:
    async with serve(app, **METERED) as srv:
        async with connect(srv.ws_url + "/") as ws:
            for text in ("one", "two"):
                await ws.send(text)
                assert await ws.recv() == text
            await ws.send("close")
            await ws.wait_closed()
        await eventually(lambda: not srv.state.connections)
    s = scrape()
    assert value(s, "channels_server_websocket_messages_total", direction="in") == 3
    assert value(s, "channels_server_websocket_messages_total", direction="out") == 2
    assert value(s, "channels_server_websocket_closes_total", code="4xxx") == 1
    assert value(s, "channels_server_requests_total", method="GET", status="1xx") == 1
    # The handshake request was read as HTTP; frames after it count as websocket.
    assert value(s, "channels_server_received_bytes_total", protocol="http") > 0
    assert value(s, "channels_server_received_bytes_total", protocol="websocket") > 0
    assert value(s, "channels_server_sent_bytes_total", protocol="websocket") > 0
    assert value(s, "channels_server_sent_bytes_total", protocol="http") == 0  # the 101 is ws


async def test_http2_streams_are_counted_and_timed(rec: Recorder) -> None:
    async with serve(app, **METERED) as srv:
        rec.state = srv.state
        async with H2Client.connect(srv.port) as client:
            for path in ("/", "/", "/missing"):
                response = await client.response(client.request("GET", path))
                assert response.ended
            s = scrape()
            assert value(s, "channels_server_connections_open", protocol="h2") == 1
    s = scrape()
    assert value(s, "channels_server_requests_total", method="GET", status="2xx") == 2
    assert value(s, "channels_server_requests_total", method="GET", status="4xx") == 1
    assert value(s, "channels_server_request_duration_seconds_count") == 3
    # Timed from each stream's head (all well under the top bound, not "since boot").
    assert value(s, "channels_server_request_duration_seconds_bucket", le="10.0") == 3
    assert value(s, "channels_server_received_bytes_total", protocol="h2") > 0
    assert value(s, "channels_server_sent_bytes_total", protocol="h2") > 0


async def test_a_listener_with_metrics_off_records_nothing(rec: Recorder) -> None:
    # The --metrics-port listener's own config has metrics off: scrapes are not traffic.
    async with serve(app, access_log=False) as srv:
        await asyncio.to_thread(
            exchange, srv, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        async with connect(srv.ws_url + "/") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
    s = scrape()
    assert not any(name == "channels_server_requests_total" for name, _ in s)
    assert value(s, "channels_server_request_duration_seconds_count") == 0
    assert value(s, "channels_server_received_bytes_total", protocol="http") == 0
    assert value(s, "channels_server_websocket_messages_total", direction="in") == 0
