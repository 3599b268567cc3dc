"""What the app sends, checked over real sockets: invalid header and trailer fields never reach
the wire, wrong message order gives a 500, Content-Length mismatches close instead of desync,
bodiless statuses and HEAD, per-request lifespan state, and which upgrades count as WebSocket."""

from __future__ import annotations

from typing import Any

import pytest

from server.types import Message, Receive, Scope, Send
from tests.support.http_exchange import exchange, read_all, statuses
from tests.support.live import connect, serve

pytestmark = pytest.mark.timeout(30)

OPTS: dict[str, Any] = {"access_log": False}
GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
GET_CLOSE = b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def app_sending(*messages: Message, errors: list[BaseException] | None = None) -> Any:
    """An app that sends ``messages`` for "/" and answers "last" for any other path."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"last"})
            return
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            if errors is None:
                raise
            errors.append(exc)

    return app


START: Message = {"type": "http.response.start", "status": 200, "headers": []}


def start(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers or []}


def body(data: bytes = b"", more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


# --- response splitting / invalid headers --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-ok", b"a\r\nset-cookie: evil=1"),
        (b"x-ok", b"a\nset-cookie: evil=1"),
        (b"x-ok", b"a\rset-cookie: evil=1"),
        (b"x-ok", b"a\x00b"),
        (b"set-cookie: evil=1\r\nx", b"v"),
        (b"x\nset-cookie", b"v"),
        (b"bad name", b"v"),
        (b"bad:name", b"v"),
        (b"", b"v"),
        (b"x\x00y", b"v"),
        (b"(x)", b"v"),
        (b"x\x7f", b"v"),
        (b"caf\xc3\xa9", b"v"),
    ],
)
async def test_invalid_response_header_is_never_written(name: bytes, value: bytes) -> None:
    errors: list[BaseException] = []
    app = app_sending(start(200, [(name, value)]), body(b"hello"), errors=errors)
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, GET)
    assert statuses(data) == [500]
    assert b"evil" not in data and b"hello" not in data
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


async def test_invalid_trailer_field_is_never_written() -> None:
    errors: list[BaseException] = []
    app = app_sending(
        {**start(200), "trailers": True},
        body(b"hello"),
        {"type": "http.response.trailers", "headers": [(b"x-t", b"a\r\nevil: 1")]},
        errors=errors,
    )
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n"
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert b"evil" not in data
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert not data.endswith(b"0\r\n\r\n")  # the client must see an incomplete message


# --- wrong messages / order ----------------------------------------------------------------


@pytest.mark.parametrize(
    "messages",
    [
        (body(b"x"),),  # body before start
        ({"type": "http.response.nonsense"},),
        ({"body": b"x"},),  # no type at all
        (start(101), body()),  # 1xx is not for the app to send
        (start(99), body()),
        ({"type": "http.response.start", "status": "200", "headers": []}, body()),
        ({"type": "http.response.start", "status": 200, "headers": [("x", "y")]}, body()),
        (start(200), body(b"x"), body(b"y")),  # a body after the final one
    ],
)
async def test_wrong_messages_give_runtime_error_and_500(messages: tuple[Message, ...]) -> None:
    errors: list[BaseException] = []
    app = app_sending(*messages, errors=errors)
    async with serve(app, **OPTS) as srv, connect(srv) as (reader, writer):
        writer.write(GET + GET_CLOSE)
        data = await read_all(reader)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError), errors
    if messages[-1] == body(b"y"):
        # The first response was complete and correct: the connection stays usable.
        assert statuses(data) == [200, 200] and data.endswith(b"last")
    else:
        assert statuses(data) == [500]


async def test_content_length_too_long_in_first_message_gives_500() -> None:
    # The body overruns the declared length in the very first body message: nothing was
    # written yet, so the client must get a clean 500, not a connection closed in silence.
    errors: list[BaseException] = []
    app = app_sending(start(200, [(b"content-length", b"3")]), body(b"too long"), errors=errors)
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, GET + GET_CLOSE)
    assert statuses(data) == [500]
    assert b"too long" not in data
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


async def test_content_length_too_long_later_cuts_the_connection() -> None:
    errors: list[BaseException] = []
    app = app_sending(
        start(200, [(b"content-length", b"4")]),
        body(b"ab", more=True),
        body(b"cdef"),
        errors=errors,
    )
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, GET + GET_CLOSE)
    # Only the head and the first two bytes: never a desynchronised "ef" or second response.
    assert statuses(data) == [200]
    assert data.endswith(b"\r\n\r\nab")
    assert len(errors) == 1


async def test_content_length_too_short_closes_instead_of_desync() -> None:
    app = app_sending(start(200, [(b"content-length", b"10")]), body(b"short"))
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, GET + GET_CLOSE)
    # The client must see the connection end (incomplete body), never the next response
    # glued into the declared 10 bytes.
    assert statuses(data) == [200]
    assert data.endswith(b"\r\n\r\nshort")


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses(status: int) -> None:
    headers = [(b"content-length", b"5")] if status == 304 else []
    app = app_sending(start(status, headers), body(b"hello"))
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, GET + GET_CLOSE)
    assert statuses(data) == [status, 200]
    first = data.split(b"HTTP/1.1 200")[0]
    assert b"hello" not in data
    assert b"transfer-encoding" not in first
    if status == 304:
        assert b"content-length: 5\r\n" in first
    else:
        assert b"content-length" not in first
    assert data.endswith(b"last")


async def test_head_keeps_content_length_and_sends_no_body() -> None:
    app = app_sending(start(200, [(b"content-length", b"5")]), body(b"hello"))
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + GET_CLOSE)
    assert statuses(data) == [200, 200]
    assert b"content-length: 5\r\n" in data.split(b"\r\n\r\n")[0] + b"\r\n"
    assert b"hello" not in data and data.endswith(b"last")


async def test_lifespan_state_is_a_shallow_copy_per_request() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope["state"]))
        scope["state"]["mutated"] = True
        scope["state"]["shared"].append(1)
        await send(start(204))
        await send(body())

    async with serve(app, **OPTS) as srv:
        srv.state.lifespan_state = {"shared": []}
        data = await exchange(srv, GET + GET_CLOSE)
        assert statuses(data) == [204, 204]
        assert "mutated" not in srv.state.lifespan_state
        assert srv.state.lifespan_state["shared"] == [1, 1]
    assert all("mutated" not in s for s in seen)


@pytest.mark.parametrize("field", [("x-t", "v"), (b"x-t", 5), (3, b"v")])
async def test_trailer_fields_must_be_bytes(field: tuple[Any, Any]) -> None:
    errors: list[BaseException] = []
    app = app_sending(
        {**start(200), "trailers": True},
        body(b"hello"),
        {"type": "http.response.trailers", "headers": [field]},
        errors=errors,
    )
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n"
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError), errors
    assert not data.endswith(b"0\r\n\r\n")


async def test_websocket_upgrade_needs_http11_and_the_websocket_token() -> None:
    # RFC 6455 section 4.2.1: an HTTP/1.0 request or an Upgrade field that merely contains
    # "websocket" as a substring is no handshake: it is served as plain HTTP.
    scopes: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope["type"])
        if scope["type"] == "http":
            await send(start(200))
            await send(body(b"plain"))

    handshake = (
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
    )
    async with serve(app, **OPTS) as srv:
        old = await exchange(
            srv, b"GET / HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\n" + handshake + b"\r\n"
        )
        fake = await exchange(
            srv,
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: notwebsocket\r\n"
            + handshake
            + b"Connection: close\r\n\r\n",
        )
    assert statuses(old) == [200] and old.endswith(b"plain")
    assert statuses(fake) == [200] and fake.endswith(b"plain")
    assert scopes == ["http", "http"]


async def test_500_to_a_head_request_has_no_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert statuses(data) == [500]
    assert data.endswith(b"\r\n\r\n")  # RFC 9110 section 9.3.2: no content for HEAD


async def test_413_to_a_head_request_has_no_body() -> None:
    async with serve(app_sending(), limit_request_body=10, **OPTS) as srv:
        data = await exchange(srv, b"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n")
    assert statuses(data) == [413]
    assert data.endswith(b"\r\n\r\n")
