"""``server.types`` describes what the server really builds: every scope and message the server
hands an application, over real sockets, has exactly the keys its ``TypedDict`` declares (all
required ones, no undeclared one) and a ``type`` its ``Literal`` allows."""

from __future__ import annotations

import asyncio
import typing
from typing import Any

from server.config import Config
from server.lifespan import Lifespan
from server.state import ServerState
from server.types import (
    HTTPDisconnectEvent,
    HTTPRequestEvent,
    HTTPScope,
    LifespanScope,
    LifespanShutdownEvent,
    LifespanStartupEvent,
    Receive,
    Scope,
    Send,
    WebSocketConnectEvent,
    WebSocketDisconnectEvent,
    WebSocketReceiveDataEvent,
    WebSocketScope,
)
from tests.support.http_exchange import exchange
from tests.support.live import serve
from tests.support.ws import close_writer, frame, raw_open


def assert_shape(value: Any, shape: Any) -> None:
    """``value`` is a plain dict that fits the TypedDict ``shape``."""
    assert type(value) is dict, type(value)
    keys = set(value)
    assert shape.__required_keys__ <= keys, (shape.__name__, shape.__required_keys__ - keys)
    assert keys <= shape.__required_keys__ | shape.__optional_keys__, (
        shape.__name__,
        keys - shape.__required_keys__ - shape.__optional_keys__,
    )
    if "type" in shape.__required_keys__:
        allowed = typing.get_args(typing.get_type_hints(shape)["type"])
        assert value["type"] in allowed, (value["type"], allowed)


async def test_http_scope_and_messages_fit_their_types() -> None:
    seen: list[tuple[Any, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, HTTPScope))
        await send({"type": "http.response.start", "status": 200})
        seen.append((await receive(), HTTPRequestEvent))
        await send({"type": "http.response.body", "body": b"ok"})
        seen.append((await receive(), HTTPDisconnectEvent))

    raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    async with serve(app) as srv:
        data = await exchange(srv, raw)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert len(seen) == 3
    for value, shape in seen:
        assert_shape(value, shape)
    assert_shape(seen[0][0]["asgi"], typing.get_type_hints(HTTPScope)["asgi"])


async def test_websocket_scope_and_messages_fit_their_types() -> None:
    seen: list[tuple[Any, Any]] = []
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, WebSocketScope))
        seen.append((await receive(), WebSocketConnectEvent))
        await send({"type": "websocket.accept"})
        seen.append((await receive(), WebSocketReceiveDataEvent))
        seen.append((await receive(), WebSocketReceiveDataEvent))
        seen.append((await receive(), WebSocketDisconnectEvent))
        done.set()

    async with serve(app) as srv:
        _reader, writer, _head = await raw_open(srv)
        writer.write(frame(0x81, b"text") + frame(0x82, b"bytes") + frame(0x88, b"\x03\xe8"))
        await asyncio.wait_for(done.wait(), 5)
        await close_writer(writer)
    assert [value.get("text", value.get("bytes")) for value, _ in seen[2:4]] == ["text", b"bytes"]
    for value, shape in seen:
        assert_shape(value, shape)


async def test_lifespan_scope_and_messages_fit_their_types() -> None:
    seen: list[tuple[Any, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, LifespanScope))
        seen.append((await receive(), LifespanStartupEvent))
        await send({"type": "lifespan.startup.complete"})
        seen.append((await receive(), LifespanShutdownEvent))
        await send({"type": "lifespan.shutdown.complete"})

    lifespan = Lifespan(Config(app=app, lifespan="on"), app, ServerState())
    await lifespan.startup()
    await lifespan.shutdown(5)
    assert len(seen) == 3
    for value, shape in seen:
        assert_shape(value, shape)
