"""``HttpProtocol`` connection handling on a fake transport: lingering close after an error,
pipelining while the client does not read, no request desync whatever the app reads, the
Server header value and the health-check path."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import server.protocols.http as http_module
from server.config import Config, ConfigError
from tests.server.protocols.test_http_protocol import GET, hello, make, settle, until
from tests.support.fakes import FakeTransport


class HalfClosable(FakeTransport):
    """A plain-TCP-like fake: it can send a FIN while still receiving."""

    def __init__(self, protocol: asyncio.BaseProtocol | None = None) -> None:
        super().__init__(protocol)
        self.eof_written = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


def half_closable(proto: http_module.HttpProtocol, old: FakeTransport) -> HalfClosable:
    """Swap the connection's transport for one that can write EOF (before any data)."""
    t = HalfClosable(proto)
    proto.state.remove_connection(proto)
    proto.connection_made(t)
    old.closed = True
    return t


async def test_413_lingers_discards_input_then_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "LINGER_TIMEOUT", 0.0)
    called: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    proto, old, state = make(app, limit_request_body=10)
    t = half_closable(proto, old)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 50)
    assert t.data.startswith(b"HTTP/1.1 413 ") and t.eof_written and not t.closed
    writes = len(t.writes)
    proto.data_received(b"x" * 50 + GET)  # the rest of the body, and more: all ignored
    assert len(t.writes) == writes and not called
    await until(lambda: t.closed)  # the linger timer ends it
    await until(lambda: proto not in state.connections)


async def test_eof_from_client_ends_lingering_at_once() -> None:
    proto, old, state = make(hello)
    t = half_closable(proto, old)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nxx")
    await settle(state)
    assert t.data.startswith(b"HTTP/1.1 200 ") and t.eof_written and not t.closed
    assert proto.eof_received() is None  # the transport closes itself
    proto.connection_lost(None)
    assert proto not in state.connections


async def test_complete_exchange_closes_without_lingering() -> None:
    proto, old, state = make(hello)
    t = half_closable(proto, old)
    proto.data_received(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    await settle(state)
    assert t.closed and not t.eof_written


async def test_tls_like_transport_closes_plainly() -> None:
    # FakeTransport cannot write EOF (like TLS): closing cannot half-close, it just closes.
    proto, t, _state = make(hello, limit_request_body=10)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
    assert t.data.startswith(b"HTTP/1.1 413 ") and t.closed


async def test_next_pipelined_request_waits_for_the_client_to_read() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        if scope["path"] == "/1":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"r" + scope["path"].encode()})

    proto, t, state = make(app)
    proto.data_received(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
    await until(lambda: calls == ["/1"])
    t.fill()  # the socket buffer is full: the client does not read
    release.set()
    await until(lambda: t.data.endswith(b"r/1"))
    await settle(state)
    assert calls == ["/1"] and not t.reading  # /2 waits, and we stop reading more
    t.drain_buffer()
    await until(lambda: t.data.endswith(b"r/2"))
    assert calls == ["/1", "/2"] and t.reading and not t.closed


async def test_shutdown_while_waiting_for_the_client_closes() -> None:
    proto, t, state = make(hello)
    t.fill()
    proto.data_received(GET + GET)
    await settle(state)
    assert t.data.count(b"HTTP/1.1 200 ") == 1
    proto.shutdown()
    assert t.closed
    t.drain_buffer()  # a late resume_writing must not start the next request
    await settle(state)
    assert t.data.count(b"HTTP/1.1 200 ") == 1


# --- property: no framing desync whatever the app reads and however the bytes arrive --------

EVIL = b"GET /evil HTTP/1.1\r\nHost: t\r\n\r\n"

request_strategy = st.tuples(
    st.sampled_from(["length", "chunked", "none"]),
    st.binary(max_size=40).map(lambda b: b + EVIL),  # every body looks like a request
    st.booleans(),  # does the app read the body?
)


def encode(index: int, framing: str, body: bytes) -> bytes:
    head = b"POST /r%d HTTP/1.1\r\nHost: t\r\n" % index
    if framing == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    if framing == "chunked":
        half = len(body) // 2
        parts = [p for p in (body[:half], body[half:]) if p]
        chunks = b"".join(b"%x;ext=1\r\n" % len(p) + p + b"\r\n" for p in parts)
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-T: 1\r\n\r\n"
    return head + b"\r\n"


async def run_stream(
    requests: list[tuple[str, bytes, bool]], cuts: list[int]
) -> tuple[list[str], list[bytes], FakeTransport]:
    reads = {f"/r{i}": r[2] for i, r in enumerate(requests)}
    called: list[str] = []
    bodies: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"]
        called.append(path)
        body = b""
        if reads.get(path):
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": path.encode()})

    proto, t, state = make(app)
    stream = b"".join(encode(i, f, b) for i, (f, b, _r) in enumerate(requests))
    bounds = sorted({0, len(stream), *(min(c, len(stream)) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        if t.closed:
            break
        proto.data_received(stream[start:end])
        for _ in range(4):  # let the apps run as far as the bytes so far allow
            await asyncio.sleep(0)
    await settle(state)
    return called, bodies, t


@given(
    st.lists(request_strategy, min_size=1, max_size=5),
    st.lists(st.integers(min_value=0, max_value=600), max_size=6),
)
@settings(max_examples=120, deadline=None)
def test_no_desync_whatever_the_app_reads(
    requests: list[tuple[str, bytes, bool]], cuts: list[int]
) -> None:
    called, bodies, t = asyncio.run(run_stream(requests, cuts))
    expected = [f"/r{i}" for i in range(len(requests))]
    assert "/evil" not in called
    assert called == expected[: len(called)]  # in order, none skipped, none invented
    responses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", t.data)]
    assert responses == [200] * len(called)
    if called:
        assert t.data.endswith(called[-1].encode())
    for path, body in zip(called, bodies, strict=True):
        index = int(path[2:])
        framing, sent, reads = requests[index]
        if reads:
            assert body == (sent if framing != "none" else b"")
    # A connection is only given up when the app answered without reading a body that had
    # not fully arrived; otherwise every request is served.
    if all(r[2] or r[0] == "none" for r in requests):
        assert called == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("srv", b"server: srv\r\n"),
        ("caf\u00e9", b"server: caf\xe9\r\n"),
    ],
)
async def test_server_name_is_a_safe_field_value(name: str, expected: bytes) -> None:
    proto, t, state = make(hello, server_header=True, server_name=name)
    proto.data_received(GET)
    await settle(state)
    head = t.data.split(b"\r\n\r\n")[0] + b"\r\n"
    assert expected in head


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("\u2603", b"server: ?\r\n"),  # not latin-1: replaced, never a crash per connection
        ("x\r\nset-cookie: a=b", b""),  # never a split response
    ],
)
def test_unsafe_server_name_refused_by_config_and_never_written(name: str, expected: bytes) -> None:
    # Config refuses such a name up front; the protocol stays safe even for a Config that
    # was built around that check.
    with pytest.raises(ConfigError):
        Config(server_name=name)
    config = Config()
    object.__setattr__(config, "server_name", name)
    assert http_module._server_line(config) == expected


async def test_non_ascii_health_check_path() -> None:
    called: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)
        await hello(scope, receive, send)

    proto, t, state = make(app, health_check_path="/sant\u00e9")
    proto.data_received(b"GET /sant%C3%A9 HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle(state)
    assert t.data.startswith(b"HTTP/1.1 200 ") and t.data.endswith(b"OK") and not called
