"""Adversarial review of the Sans-I/O layer: smuggling-relevant framing and response rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.http11 import (
    MAX_CHUNK_SIZE,
    ASGIProtocolError,
    HTTP11Connection,
    RequestHead,
    ResponseState,
)
from server.sansio.scope import ConnectionInfo, http_scope, split_target
from tests.server.sansio.test_http11 import drive, one_byte_at_a_time


def chunked(size_line: bytes, data: bytes = b"abc") -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + size_line
        + b"\r\n"
        + data
    )


@pytest.mark.parametrize(
    "size_line",
    [
        b"%x" % (MAX_CHUNK_SIZE + 1),
        b"10000000000000003",  # 2**64 + 3: "3" after a 64-bit wrap-around elsewhere
        b"ffffffffffffffffffff",
    ],
)
def test_chunk_size_beyond_63_bits_is_refused(size_line: bytes) -> None:
    stream = chunked(size_line)
    assert drive([stream])[-1] == ("error", 400)
    assert drive(one_byte_at_a_time(stream))[-1] == ("error", 400)
    # the chunk header alone (no data yet) is enough to refuse it
    assert drive([chunked(size_line, b"")])[-1] == ("error", 400)


def test_largest_allowed_chunk_size_is_read() -> None:
    events = drive([chunked(b"%x" % MAX_CHUNK_SIZE)])
    assert events[-1] == ("data", b"abc")
    events = drive([chunked(b"0000000000000000003", b"abc\r\n0\r\n\r\n")])
    assert events[-2:] == [("data", b"abc"), ("end",)]


@given(st.integers(min_value=0, max_value=2**80))
@settings(max_examples=60, deadline=None)
def test_chunk_size_limit_is_exact(size: int) -> None:
    size_line = b"%x" % size
    if len(size_line) > 20:
        return  # h11's own limit on digits
    for data in (b"", b"abc") if size >= 3 else (b"",):
        events = drive([chunked(size_line, data)])
        if size > MAX_CHUNK_SIZE:
            assert events[-1] == ("error", 400)
        else:
            assert ("error", 400) not in events


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        (b"example.com", True),
        (b"example.com:80", True),
        (b"EXAMPLE.com:", True),
        (b"[2001:db8::1]:443", True),
        (b"[fe80::1%25eth0]", True),
        (b"127.0.0.1", True),
        (b"a%20b", True),
        (b"", True),
        (b"a b", False),
        (b"a/b", False),
        (b"a@b", False),
        (b"a:b", False),
        (b"a:80:80", False),
        (b"[::1", False),
        (b"a\\b", False),
        (b"\xc3\xa9.example", False),
    ],
)
def test_host_validation(host: bytes, ok: bool) -> None:
    events = drive([b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"])
    assert (events[0][0] == "head") is ok, events
    if not ok:
        assert events == [("error", 400)]


def test_http10_transfer_encoding_refused() -> None:
    stream = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert drive([stream]) == [("error", 400)]


def websocket_flag(request: bytes) -> bool:
    conn = HTTP11Connection()
    conn.receive_data(request)
    head = conn.next_event()
    assert isinstance(head, RequestHead)
    return head.websocket


def test_websocket_flag() -> None:
    base = b" / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: "
    assert websocket_flag(b"GET" + base + b"WebSocket\r\n\r\n")
    assert websocket_flag(b"GET" + base + b"h2c, websocket\r\n\r\n")
    assert not websocket_flag(b"GET" + base + b"notwebsocket\r\n\r\n")
    assert not websocket_flag(b"POST" + base + b"websocket\r\n\r\n")
    assert not websocket_flag(
        b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert not websocket_flag(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n")


# --- response side -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [b"x\x00y", b"(x)", b"x\x7f", b"caf\xc3\xa9", b"a,b", b"a;b", b"a=b", b'"a"', b"a{", b"a\x0b"],
)
def test_response_field_name_must_be_a_token(name: bytes) -> None:
    response = ResponseState()
    with pytest.raises(ASGIProtocolError):
        response.start({"status": 200, "headers": [(name, b"v")]})
    assert not response.started


def test_all_tchars_allowed_in_a_name() -> None:
    response = ResponseState()
    name = b"!#$%&'*+-.^_`|~09AZaz"
    response.start({"status": 200, "headers": [(name, b"v")]})
    assert name + b": v\r\n" in b"".join(response.body(b"", False))


@pytest.mark.parametrize("more_body", [False, True])
def test_overlong_first_body_leaves_head_unsent(more_body: bool) -> None:
    response = ResponseState()
    response.start({"status": 200, "headers": [(b"content-length", b"2")]})
    with pytest.raises(ASGIProtocolError):
        response.body(b"abc", more_body)
    # nothing was handed to the transport, so the protocol may still answer 500
    assert not response.head_sent and not response.complete


def test_overlong_zerocopy_first_body_leaves_head_unsent() -> None:
    response = ResponseState()
    response.start({"status": 200, "headers": [(b"content-length", b"2")]})
    with pytest.raises(ASGIProtocolError):
        response.file_body(3, False)
    assert not response.head_sent


def test_overlong_later_body_keeps_head_sent() -> None:
    response = ResponseState()
    response.start({"status": 200, "headers": [(b"content-length", b"2")]})
    assert response.body(b"a", True)
    with pytest.raises(ASGIProtocolError):
        response.body(b"bc", False)
    assert response.head_sent


@pytest.mark.parametrize("field", [("x", "v"), (b"x", 3), (3, b"v"), (b"x", b"a\r\nb")])
def test_trailer_fields_validated(field: Any) -> None:
    response = ResponseState(trailers_allowed=True)
    response.start({"status": 200, "headers": [], "trailers": True})
    response.body(b"x", False)
    with pytest.raises(ASGIProtocolError):
        response.send_trailers([field], False)


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (b"GET / HTTP/1.1", True),
        (b"OPTIONS * HTTP/1.1", True),
        (b"GET * HTTP/1.1", False),
        (b"CONNECT example.com:443 HTTP/1.1", False),  # no ASGI app can tunnel
        (b"GET http://example.com/x HTTP/1.1", True),
        (b"GET HTTPS://example.com HTTP/1.1", True),
        (b"GET foo HTTP/1.1", False),
        (b"GET @evil/x HTTP/1.1", False),
        (b"GET http:/x HTTP/1.1", False),
        (b"GET ?q=1 HTTP/1.1", False),
    ],
)
def test_request_target_forms(line: bytes, ok: bool) -> None:
    events = drive([line + b"\r\nHost: h\r\n\r\n"])
    assert (events[0][0] == "head") is ok, events
    if not ok:
        assert events == [("error", 400)]


def test_root_path_is_percent_encoded_in_raw_path() -> None:
    conn = HTTP11Connection()
    conn.receive_data(b"GET /x%2Fy HTTP/1.1\r\nHost: h\r\n\r\n")
    head = conn.next_event()
    assert isinstance(head, RequestHead)
    info = ConnectionInfo(peername=None, sockname=None, secure=False, root_path="/my app/é")
    scope = http_scope(head, info)
    assert scope["path"] == "/my app/é/x/y"
    assert scope["raw_path"] == b"/my%20app/%C3%A9/x%2Fy"
    assert scope["root_path"] == "/my app/é"


@pytest.mark.parametrize(
    ("target", "host_field", "expected"),
    [
        (b"http://good.example/x", b"Host: evil.example\r\n", b"good.example"),
        (b"HTTPS://user:pw@good.example:8443?q", b"Host: evil.example\r\n", b"good.example:8443"),
        (b"http://good.example/x", b"", b"good.example"),  # HTTP/1.0 style: no Host at all
    ],
)
def test_absolute_form_authority_replaces_host(
    target: bytes, host_field: bytes, expected: bytes
) -> None:
    conn = HTTP11Connection()
    conn.receive_data(b"GET " + target + b" HTTP/1.0\r\n" + host_field + b"X: 1\r\n\r\n")
    head = conn.next_event()
    assert isinstance(head, RequestHead)
    hosts = [value for name, value in head.headers if name == b"host"]
    assert hosts == [expected] and head.host == expected


def test_absolute_form_with_invalid_authority_is_refused() -> None:
    assert drive([b"GET http://a b/ HTTP/1.1\r\nHost: h\r\n\r\n"]) == [("error", 400)]
    assert drive([b"GET http://a:b/ HTTP/1.1\r\nHost: h\r\n\r\n"]) == [("error", 400)]


@pytest.mark.parametrize(
    ("target", "path"),
    [(b"ws://h/chat?x", b"/chat"), (b"HTTP://H", b"/"), (b"example.com:443", b"example.com:443")],
)
def test_split_target_forms(target: bytes, path: bytes) -> None:
    assert split_target(target)[0] == path
