"""--timeout-request-body: a request body that stops making progress is given up.

The app gets ``http.disconnect``, the client a 408 if no response has started, and the
connection closes.  Fake transport and virtual time first, then real sockets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from server.config import Config
from server.protocols.http import BODY_HIGH_WATER, HttpProtocol
from server.state import ServerState
from tests.support.fakes import FakeTransport, VirtualClock
from tests.support.live import connect, serve

pytestmark = pytest.mark.timeout(30)

POST_100 = b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
CHUNKED = b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"


def make(app: Any, **options: Any) -> tuple[HttpProtocol, FakeTransport, VirtualClock]:
    options.setdefault("date_header", False)
    options.setdefault("server_header", False)
    options.setdefault("timeout_keep_alive", 1000.0)
    config = Config(app=app, **options)
    clock = VirtualClock(asyncio.get_running_loop())
    proto = HttpProtocol(config, app, ServerState(), clock)  # type: ignore[arg-type]
    transport = FakeTransport(proto)
    proto.connection_made(transport)
    return proto, transport, clock


async def turn() -> None:
    """Let the app task run until it waits again (a few real loop turns, no clock)."""
    for _ in range(5):
        await asyncio.sleep(0)


class Reader:
    """An app that reads the body and records every message; answers 200 when it has it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if self.messages[-1]["type"] == "http.request":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize(
    ("head", "piece"), [(POST_100, b"x" * 10), (CHUNKED, b"a\r\n" + b"x" * 10 + b"\r\n")]
)
async def test_trickle_then_stall_gets_408_and_the_app_a_disconnect(
    head: bytes, piece: bytes
) -> None:
    app = Reader()
    proto, t, clock = make(app, timeout_request_body=10.0)
    proto.data_received(head + piece)
    await turn()
    for _ in range(3):  # progress within the timeout keeps the request alive
        clock.advance(9.0)
        assert not t.closed
        proto.data_received(piece)
        await turn()
    clock.advance(9.0)
    assert not t.closed
    clock.advance(1.5)
    assert t.closed
    assert t.data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close\r\n" in t.data
    await turn()
    assert [m["type"] for m in app.messages][-1] == "http.disconnect"
    assert b"".join(m.get("body", b"") for m in app.messages) == b"x" * 40


async def test_stall_after_the_response_started_closes_without_408() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"early", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass

    proto, t, clock = make(app, timeout_request_body=5.0)
    proto.data_received(POST_100 + b"x" * 10)
    await turn()
    clock.advance(5.5)
    assert t.closed
    assert b" 408 " not in t.data and t.data.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_body_that_arrives_whole_sets_no_deadline() -> None:
    app = Reader()
    proto, t, clock = make(app, timeout_request_body=5.0)
    proto.data_received(POST_100[:-30])
    proto.data_received(POST_100[-30:] + b"x" * 100)
    await turn()
    assert t.data.startswith(b"HTTP/1.1 200 OK\r\n")
    clock.advance(50.0)
    assert not t.closed


async def test_an_app_that_does_not_read_is_not_the_clients_fault() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await release.wait()  # the body piles up to the high-water mark meanwhile
        while (await receive())["more_body"]:
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    size = BODY_HIGH_WATER * 2
    proto, t, clock = make(app, timeout_request_body=5.0)
    head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size
    proto.data_received(head + b"x" * BODY_HIGH_WATER)
    await started.wait()
    assert not t.reading  # paused for the app
    clock.advance(60.0)
    assert not t.closed
    release.set()
    await turn()
    proto.data_received(b"x" * BODY_HIGH_WATER)
    await turn()
    assert t.data.startswith(b"HTTP/1.1 204 ")


async def test_expect_continue_waits_for_the_app_then_the_client() -> None:
    asked = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asked.wait()
        await receive()

    proto, t, clock = make(app, timeout_request_body=5.0)
    head = b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    proto.data_received(head)
    await turn()
    clock.advance(60.0)  # the client waits for our 100: no deadline yet
    assert not t.closed and t.data == b""
    asked.set()
    await turn()
    assert t.data == b"HTTP/1.1 100 Continue\r\n\r\n"
    clock.advance(5.5)
    assert t.closed and b"HTTP/1.1 408 " in t.data


def test_option_from_flag_and_environment() -> None:
    from server.cli import build_config

    assert Config().timeout_request_body == 10.0
    flag = build_config(["app:app", "--timeout-request-body", "3"], environ={})
    assert flag.timeout_request_body == 3.0
    env = {"CHANNELS_SERVER_TIMEOUT_REQUEST_BODY": "4.5"}
    assert build_config(["app:app"], environ=env).timeout_request_body == 4.5


# --- real sockets -------------------------------------------------------------------------


async def test_real_socket_body_that_trickles_then_stalls() -> None:
    app = Reader()
    async with (
        serve(app, access_log=False, timeout_request_body=0.3) as srv,
        connect(srv) as (reader, writer),
    ):
        writer.write(POST_100 + b"x" * 10)
        await writer.drain()
        for _ in range(3):
            await asyncio.sleep(0.1)  # the client's pace, well within the timeout
            writer.write(b"x" * 10)
            await writer.drain()
        started = time.monotonic()
        data = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        waited = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert waited >= 0.25
    assert app.messages[-1] == {"type": "http.disconnect"}
    assert b"".join(m.get("body", b"") for m in app.messages) == b"x" * 40
