"""Graceful shutdown of HTTP/1.1 keep-alive connections (rolling restart, SIGTERM).

The rule under test: a keep-alive connection is never closed under a request the client may
already have sent.  The in-flight response (or, on an idle connection, the next request within
``SHUTDOWN_IDLE_GRACE``) is answered with ``connection: close``; only a connection that stays
silent for the grace is closed, having written nothing.  End to end (a load generator through a
rolling restart): tests/server/test_faults.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.protocols.http import SHUTDOWN_IDLE_GRACE
from tests.server.protocols.test_http_protocol import (
    GET,
    gated_hello,
    hello,
    make,
    settle,
    until_closed,
)


def responses(data: bytes) -> list[bytes]:
    """The response heads in ``data`` (every test response has the 2-byte body ``hi``)."""
    return [part.split(b"\r\n\r\n")[0] for part in data.split(b"HTTP/1.1 ")[1:]]


async def test_request_arriving_just_after_shutdown_is_answered_with_close() -> None:
    proto, t, state = make(hello)
    proto.data_received(GET)
    await settle(state)
    proto.shutdown()
    assert not t.closed  # idle, but the client may be sending its next request right now
    proto.data_received(GET)
    await settle(state)
    heads = responses(t.data)
    assert len(heads) == 2
    assert b"connection: close" not in heads[0] and b"connection: close" in heads[1]
    await until_closed(t)


async def test_fresh_connection_gets_its_request_answered_with_close() -> None:
    # Accepted just before the stop, request not read yet (a client reconnecting).
    proto, t, state = make(hello)
    proto.shutdown()
    proto.data_received(GET)
    await settle(state)
    assert b"connection: close" in responses(t.data)[0]
    await until_closed(t)


async def test_head_already_sent_keeps_its_promise(monkeypatch: pytest.MonkeyPatch) -> None:
    # The response head went out with keep-alive before the stop: closing right after it
    # would break the promise, so the connection waits (briefly) for the next request.
    monkeypatch.setattr("server.protocols.http.SHUTDOWN_IDLE_GRACE", 0.05)
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"h", "more_body": True})
        await gate.wait()
        await send({"type": "http.response.body", "body": b"i"})

    proto, t, state = make(app)
    proto.data_received(GET)
    await asyncio.sleep(0)
    assert t.writes
    proto.shutdown()
    gate.set()
    await settle(state)
    assert not t.closed
    proto.data_received(GET)
    await settle(state)
    heads = responses(t.data)
    assert len(heads) == 2 and b"connection: close" in heads[1]
    await until_closed(t)


async def test_head_not_sent_yet_says_close_and_closes_after_response() -> None:
    gate = asyncio.Event()
    app = gated_hello(gate)
    proto, t, state = make(app)
    proto.data_received(GET)
    await asyncio.sleep(0)
    proto.shutdown()
    gate.set()
    await settle(state)
    assert b"connection: close" in responses(t.data)[0]
    await until_closed(t, limit=0.5 * SHUTDOWN_IDLE_GRACE)  # no grace: the client was told


async def test_grace_never_extends_keep_alive_timeout() -> None:
    proto, t, state = make(hello, timeout_keep_alive=0.01)
    proto.data_received(GET)
    await settle(state)
    proto.shutdown()
    await until_closed(t, limit=0.5 * SHUTDOWN_IDLE_GRACE)
    assert len(responses(t.data)) == 1


async def test_partial_head_keeps_its_head_timer() -> None:
    # A request is arriving: it is answered (with close), not cut off by the idle grace.
    proto, t, state = make(hello)
    proto.data_received(b"GET / HTTP/1.1\r\nHo")
    proto.shutdown()
    await asyncio.sleep(0)
    proto.data_received(b"st: t\r\n\r\n")
    await settle(state)
    assert b"connection: close" in responses(t.data)[0]
    await until_closed(t)
