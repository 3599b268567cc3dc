"""Sans-I/O HTTP/1.1: request parsing, limits and the ASGI response rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.http11 import (
    MAX_CHUNK_SIZE,
    PAUSED,
    ASGIProtocolError,
    ConnectionClosed,
    Data,
    EndOfMessage,
    HTTP11Connection,
    RequestError,
    RequestHead,
    ResponseState,
)
from tests.support.http11 import drive_cycles

Norm = tuple[Any, ...]


def _head(event: RequestHead) -> Norm:
    return (
        "head",
        event.method,
        event.target,
        event.http_version,
        tuple(event.headers),
        event.keep_alive,
    )


def drive(chunks: list[bytes], **limits: Any) -> list[Norm]:
    """Feed ``chunks`` one by one; return normalized events over all request cycles.

    Body data is merged (how it is chunked depends on the split, not on the stream), and an
    error ends the run as ("error", status).
    """
    return drive_cycles(
        chunks, conn=HTTP11Connection(**limits), record=_head, stop_after_close=False
    )


GET = b"GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
POST_CL = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
POST_CHUNKED = (
    b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)
HTTP10 = b"GET /old HTTP/1.0\r\n\r\n"
STREAMS = [GET, POST_CL, POST_CHUNKED, GET + POST_CL + POST_CHUNKED + GET]


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("stream", STREAMS)
def test_whole_and_bytewise_give_same_events(stream: bytes) -> None:
    whole = drive([stream])
    assert whole == drive(one_byte_at_a_time(stream))
    assert whole[0][0] == "head"
    assert whole.count(("end",)) == stream.count(b"HTTP/1.1\r\n")


@pytest.mark.parametrize("stream", STREAMS)
def test_trailing_garbage_does_not_change_earlier_events(stream: bytes) -> None:
    clean = drive([stream])
    dirty = drive([stream + b"\x00\xffgarbage\r\n\r\n"])
    assert dirty[: len(clean)] == clean
    assert dirty[len(clean)] == ("error", 400)
    # and byte by byte too
    assert drive(one_byte_at_a_time(stream + b"\x00garbage\r\n\r\n"))[: len(clean)] == clean


def test_pipelined_requests_in_order() -> None:
    events = drive([GET + POST_CL + GET])
    heads = [e[2] for e in events if e[0] == "head"]
    assert heads == [b"/a?x=1", b"/p", b"/a?x=1"]
    assert ("data", b"hello") in events


def test_chunked_body_is_decoded() -> None:
    events = drive([POST_CHUNKED])
    assert ("data", b"hello world") in events


@given(st.lists(st.integers(min_value=0, max_value=len(STREAMS[3])), max_size=12))
@settings(max_examples=150, deadline=None)
def test_any_split_gives_same_events(cuts: list[int]) -> None:
    stream = STREAMS[3]
    points = sorted(set(cuts))
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert drive([c for c in chunks if c]) == drive([stream])


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_random_bytes_only_raise_request_error(data: bytes) -> None:
    # drive() turns RequestError into ("error", status); anything else would propagate here.
    events = drive([data], limit_request_line=64, limit_request_header_size=128)
    for event in events:
        if event[0] == "error":
            assert 400 <= event[1] <= 505


@given(st.binary(max_size=200))
@settings(max_examples=150, deadline=None)
def test_random_bytes_after_valid_prefix(data: bytes) -> None:
    events = drive([GET + data])
    assert events[0][0] == "head"


def test_http10_and_keep_alive_decisions() -> None:
    assert drive([HTTP10])[0][-1] is False
    ka10 = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    assert drive([ka10])[0][-1] is True
    close11 = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    assert drive([close11])[0][-1] is False
    assert drive([GET])[0][-1] is True


def head_of(data: bytes) -> RequestHead:
    conn = HTTP11Connection()
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, RequestHead)
    return event


def test_request_head_flags() -> None:
    h = head_of(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n"
        b"TE: trailers\r\n\r\n"
    )
    assert h.expect_continue and h.te_trailers and h.has_body and h.content_length == 3
    h = head_of(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert not h.expect_continue  # RFC 9110 10.1.1: ignored for HTTP/1.0
    h = head_of(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: WebSocket\r\n\r\n"
    )
    assert h.upgrade == b"websocket"
    h = head_of(b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n")
    assert h.upgrade is None  # not announced in Connection
    assert head_of(GET).headers == [(b"host", b"example.com"), (b"user-agent", b"t")]


@pytest.mark.parametrize(
    ("data", "limits", "status"),
    [
        (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n", {"limit_request_line": 50}, 414),
        # incomplete request line that is already too long
        (b"GET /" + b"a" * 400, {"limit_request_line": 50}, 414),
        (b"GET /" + b"a" * 100_000, {}, 414),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-A: 1\r\n" * 5 + b"\r\n",
            {"limit_request_headers": 3},
            431,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 300 + b"\r\n\r\n",
            {"limit_request_header_size": 100},
            431,
        ),
        # incomplete header block beyond the limit
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 400,
            {"limit_request_header_size": 100},
            431,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
            {"limit_request_body": 10},
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n"
            b"8\r\n12345678\r\n",
            {"limit_request_body": 10},
            413,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", {}, 400),  # HTTP/1.1 without Host (RFC 9112 3.2)
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", {}, 505),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", {}, 501),
        (b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", {}, 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", {}, 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", {}, 400),  # TLS on plain port
        # request smuggling shapes (RFC 9112 sections 6.1 and 6.3)
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            {},
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", {}, 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", {}, 501),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {}, 400),
        (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", {}, 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", {}, 400),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
            {},
            400,
        ),
    ],
)
def test_limits_and_malformed(data: bytes, limits: dict[str, int], status: int) -> None:
    assert drive([data], **limits)[-1] == ("error", status)
    assert drive(one_byte_at_a_time(data), **limits)[-1] == ("error", status)


def test_empty_lines_before_request_line_are_ignored() -> None:
    # RFC 9112 section 2.2, also between pipelined requests (CRLF after a POST body)
    events = drive([b"\r\n\r\n" + GET + b"\r\n" + POST_CL + b"\r\n\n" + GET])
    assert [e[2] for e in events if e[0] == "head"] == [b"/a?x=1", b"/p", b"/a?x=1"]
    assert drive(one_byte_at_a_time(b"\r\n" + GET))[0][0] == "head"


def test_body_within_limit_passes() -> None:
    data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
    assert drive([data], limit_request_body=10)[-1] == ("end",)


def test_eof_while_idle_and_mid_body() -> None:
    conn = HTTP11Connection()
    conn.receive_eof()
    assert isinstance(conn.next_event(), ConnectionClosed)
    conn = HTTP11Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01")
    assert isinstance(conn.next_event(), RequestHead)
    assert isinstance(conn.next_event(), Data)
    conn.receive_eof()
    with pytest.raises(RequestError) as info:
        conn.next_event()
    assert info.value.status == 400


def test_buffered_and_upgrade_data() -> None:
    conn = HTTP11Connection()
    conn.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x80"
    )
    head = conn.next_event()
    assert isinstance(head, RequestHead) and head.upgrade == b"websocket"
    assert conn.take_upgrade_data() == b"\x81\x80"
    conn = HTTP11Connection()
    conn.receive_data(GET + GET)
    assert isinstance(conn.next_event(), RequestHead)
    assert isinstance(conn.next_event(), EndOfMessage)
    assert conn.next_event() is PAUSED
    assert conn.buffered == len(GET)


# --- responses ---------------------------------------------------------------------------


def start(resp: ResponseState, status: int = 200, headers: Any = (), **kw: Any) -> None:
    resp.start({"type": "http.response.start", "status": status, "headers": headers, **kw})


def joined(parts: list[Any]) -> bytes:
    return b"".join(bytes(p) for p in parts)


def test_full_body_gets_content_length_and_one_write() -> None:
    r = ResponseState()
    start(r, 200, [(b"Content-Type", b"text/plain")])
    parts = r.body(b"hello", False)
    assert joined(parts) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
    )
    assert r.complete and r.keep_alive


def test_default_headers_and_app_overrides() -> None:
    r = ResponseState()
    r.start({"status": 200, "headers": [(b"server", b"mine")]}, b"date: D\r\nserver: ours\r\n")
    assert joined(r.body(b"", False)) == (
        b"HTTP/1.1 200 OK\r\nserver: mine\r\ndate: D\r\ncontent-length: 0\r\n\r\n"
    )


def test_streaming_is_chunked() -> None:
    r = ResponseState()
    start(r)
    first = joined(r.body(b"abc", True))
    assert first == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"
    assert joined(r.body(b"", True)) == b""  # an empty chunk would end the body
    assert joined(r.body(b"0123456789abcdef", True)) == b"10\r\n0123456789abcdef\r\n"
    assert joined(r.body(b"", False)) == b"0\r\n\r\n"
    assert r.complete


def test_app_content_length_and_transfer_encoding_handling() -> None:
    r = ResponseState()
    start(r, 200, [(b"content-length", b"6"), (b"transfer-encoding", b"chunked")])
    assert joined(r.body(b"abc", True)) == b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nabc"
    with pytest.raises(ASGIProtocolError):
        r.body(b"toolong", False)
    r = ResponseState()
    start(r, 200, [(b"content-length", b"6")])
    r.body(b"abc", False)
    assert r.complete and not r.keep_alive  # short body: only closing tells the client


def test_http10_is_close_delimited_and_keep_alive_echoed() -> None:
    r = ResponseState(http11=False, keep_alive=False)
    start(r)
    assert joined(r.body(b"abc", True)) == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabc"
    assert joined(r.body(b"def", False)) == b"def"
    r = ResponseState(http11=False, keep_alive=True)
    start(r)
    assert joined(r.body(b"abc", False)) == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\nabc"
    )
    r = ResponseState(http11=False, keep_alive=True)
    start(r)
    r.body(b"abc", True)
    assert not r.keep_alive  # unknown length on HTTP/1.0 forces close


def test_head_204_304_have_no_body() -> None:
    r = ResponseState(head_request=True)
    start(r)
    assert joined(r.body(b"hello", False)) == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    r = ResponseState(head_request=True)
    start(r, 200, [(b"content-length", b"100")])
    assert joined(r.body(b"", False)) == b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"
    r = ResponseState()
    start(r, 204, [(b"content-length", b"0")])
    assert joined(r.body(b"ignored", False)) == b"HTTP/1.1 204 No Content\r\n\r\n"
    r = ResponseState()
    start(r, 304)
    assert joined(r.body(b"", False)) == b"HTTP/1.1 304 Not Modified\r\n\r\n"


def test_connection_close_from_app_and_unknown_status() -> None:
    r = ResponseState()
    start(r, 599, [(b"Connection", b"close")])
    assert joined(r.body(b"", False)) == (
        b"HTTP/1.1 599 \r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )


def test_trailers() -> None:
    r = ResponseState(trailers_allowed=True)
    start(r, 200, trailers=True)
    assert joined(r.body(b"abc", False)) == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    assert not r.complete
    with pytest.raises(ASGIProtocolError):
        r.body(b"more", False)
    assert joined(r.send_trailers([(b"x-checksum", b"1")], True)) == b"0\r\nx-checksum: 1\r\n"
    assert joined(r.send_trailers([(b"x-more", b"2")], False)) == b"x-more: 2\r\n\r\n"
    assert r.complete
    # Declared but not allowed (no "TE: trailers"): normal framing, trailers dropped.
    r = ResponseState(trailers_allowed=False)
    start(r, 200, trailers=True)
    assert joined(r.body(b"abc", False)).endswith(b"content-length: 3\r\n\r\nabc")
    assert r.send_trailers([(b"x", b"1")], False) == []
    assert r.complete


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-evil", b"a\r\nSet-Cookie: x")],
        [(b"bad name", b"v")],
        [(b"x\n", b"v")],
        [(b"", b"v")],
        [("str", "str")],
        [(b"content-length", b"nope")],
        [(b"content-length", b"-1")],
    ],
)
def test_bad_response_headers_rejected(headers: Any) -> None:
    with pytest.raises(ASGIProtocolError):
        start(ResponseState(), 200, headers)


def test_message_order_rules() -> None:
    r = ResponseState()
    with pytest.raises(ASGIProtocolError):
        r.body(b"x", False)
    start(r)
    with pytest.raises(ASGIProtocolError):
        start(r)
    r.body(b"", False)
    with pytest.raises(ASGIProtocolError):
        r.body(b"x", False)
    with pytest.raises(ASGIProtocolError):
        start(ResponseState(), 99)
    with pytest.raises(ASGIProtocolError):
        start(ResponseState(), "200")  # type: ignore[arg-type]
    with pytest.raises(ASGIProtocolError):
        ResponseState().send_trailers([], False)
    r = ResponseState()
    start(r)
    with pytest.raises(ASGIProtocolError):
        r.body("text", False)  # type: ignore[arg-type]
    assert joined(r.body(memoryview(b"mv"), False)).endswith(b"\r\n\r\nmv")


def test_file_head() -> None:
    r = ResponseState()
    start(r, 200, [(b"content-type", b"text/plain")])
    head, count = r.file_head(1234)
    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1234\r\n\r\n"
    assert count == 1234 and r.complete
    r = ResponseState(head_request=True)
    start(r)
    assert r.file_head(10) == (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", 0)


# --- smuggling-relevant framing: chunk sizes, Host, request-target forms -----------------


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
