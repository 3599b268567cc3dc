"""What the HTTP and WebSocket protocols share (server/protocols/common.py), through both.

The Server header is one function: the same bytes on an HTTP response, a 101, a WebSocket
refusal (403), a denial response and a handshake error, for a non-ASCII name and for none.
"""

from __future__ import annotations

import asyncio

import pytest

from server.config import Config
from server.protocols.common import ConnectionTimer, default_headers, server_line
from server.types import Receive, Scope, Send
from tests.support.live import LiveServer, serve
from tests.support.ws import close_writer, header_lines, request


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()
    path = scope["path"]
    if path == "/accept":
        await send({"type": "websocket.accept"})
        await receive()
    elif path == "/refuse":
        await send({"type": "websocket.close"})
    else:
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})


async def head_of(srv: LiveServer, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    writer.write(data)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    await close_writer(writer)
    return head


ALL_PATHS = {
    "http": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "101": request(path=b"/accept"),
    "403": request(path=b"/refuse"),
    "denial": request(path=b"/deny"),
    "handshake-error": request(path=b"/accept").replace(b"Version: 13", b"Version: 8"),
}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"server_name": "café"}, [b"caf\xe9"]),  # latin-1 octets (RFC 9110 §5.5) everywhere
        ({"server_name": ""}, []),  # an empty name: no header at all, not "server: "
        ({"server_header": False}, []),
        ({}, [b"channels-server"]),
    ],
    ids=["cafe", "empty-name", "no-server-header", "default"],
)
async def test_server_header_is_the_same_on_every_response(
    options: dict[str, object], expected: list[bytes]
) -> None:
    async with serve(app, ws_ping_interval=None, **options) as srv:
        for kind, data in ALL_PATHS.items():
            head = await head_of(srv, data)
            status = {"http": 200, "101": 101, "403": 403, "denial": 401, "handshake-error": 426}
            assert head.startswith(b"HTTP/1.1 %d " % status[kind]), (kind, head)
            servers = [v for n, v in header_lines(head) if n == b"server"]
            assert servers == expected, (kind, head)
            dates = [v for n, v in header_lines(head) if n == b"date"]
            # RFC 9110 §6.6.1: Date on final responses; the 101 is interim-like and has none.
            assert len(dates) == (0 if kind == "101" else 1), (kind, head)


def test_server_line_and_default_headers() -> None:
    assert server_line(Config(server_name="café")) == b"server: caf\xe9\r\n"
    assert server_line(Config(server_name="")) == b""
    assert server_line(Config(server_header=False)) == b""
    assert default_headers(False, b"server: x\r\n") == b"server: x\r\n"
    with_date = default_headers(True, b"server: x\r\n")
    assert with_date.startswith(b"date: ") and with_date.endswith(b" GMT\r\nserver: x\r\n")


async def test_connection_timer_moves_later_without_rescheduling() -> None:
    loop = asyncio.get_running_loop()
    timer = ConnectionTimer(loop)
    fired: list[str] = []
    done = asyncio.Event()

    def first() -> None:
        fired.append("first")

    def second() -> None:
        fired.append("second")
        done.set()

    timer.arm(0.01, first)
    handle = timer._handle
    timer.arm(0.05, second)  # later: same handle, re-armed when it fires early
    assert timer._handle is handle and timer.callback is second
    await asyncio.wait_for(done.wait(), 5)
    assert fired == ["second"] and not timer.armed
    timer.arm(10, first)
    timer.arm(0.01, second)  # earlier: rescheduled
    assert timer.when() - loop.time() < 1
    timer.cancel()
    assert not timer.armed
