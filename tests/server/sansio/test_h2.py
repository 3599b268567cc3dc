"""``server.sansio.h2`` without I/O: the h2 library as the client, bytes passed by hand, time
passed in.  Whole input, one byte at a time and random splits give the same events; random bytes
only ever end in ``Failed``; each guard trips at its bound and not before."""

from __future__ import annotations

import itertools

import h2.config
import h2.connection
import h2.events
import pytest
from h2.errors import ErrorCodes
from hpack import Decoder, Encoder
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.h2 import (
    PREFACE,
    Body,
    BodyEnd,
    Event,
    Failed,
    H2Server,
    Refused,
    Request,
    Reset,
)
from server.sansio.h2_guards import TokenBucket
from server.sansio.h2_head import HeadError, parse_head
from server.sansio.h2_hpack import RepeatingDecoder, RepeatingEncoder
from server.sansio.h2_response import response_headers
from server.sansio.response import ASGIProtocolError
from tests.support.h2client import frame


def _client() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    return conn


def _request(conn: h2.connection.H2Connection, path: str = "/", body: bytes = b"") -> int:
    sid = conn.get_next_available_stream_id()
    fields = [(b":method", b"POST"), (b":path", path.encode()), (b":scheme", b"http")]
    fields.append((b":authority", b"example.com"))
    conn.send_headers(sid, fields, end_stream=not body)
    if body:
        conn.send_data(sid, body, end_stream=True)
    return sid


def _summary(events: list[object]) -> list[tuple[object, ...]]:
    """Events with Body pieces merged (splitting the input may split DATA payloads)."""
    out: list[tuple[object, ...]] = []
    for event in events:
        if isinstance(event, Body):
            if out and out[-1][0] == "body" and out[-1][1] == event.stream_id:
                out[-1] = ("body", event.stream_id, out[-1][2] + event.data)  # type: ignore[operator]
            else:
                out.append(("body", event.stream_id, event.data))
        elif isinstance(event, Request):
            out.append(("request", event.stream_id, event.head.method, event.head.target))
        elif isinstance(event, BodyEnd):
            out.append(("end", event.stream_id))
        else:
            out.append((type(event).__name__,))
    return out


def _wire() -> bytes:
    conn = _client()
    _request(conn, "/a")
    _request(conn, "/b?x=1", b"payload" * 100)
    return conn.data_to_send()


def _feed(pieces: list[bytes]) -> list[object]:
    server = H2Server()
    server.initiate()
    events: list[object] = []
    for piece in pieces:
        events.extend(server.receive_data(piece, 0.0))
    return events


def test_whole_and_byte_at_a_time_agree() -> None:
    wire = _wire()
    whole = _summary(_feed([wire]))
    assert whole == [
        ("WindowOpened",),  # the client's SETTINGS
        ("request", 1, b"POST", b"/a"),
        ("end", 1),
        ("request", 3, b"POST", b"/b?x=1"),
        ("body", 3, b"payload" * 100),
        ("end", 3),
    ]
    assert _summary(_feed([wire[i : i + 1] for i in range(len(wire))])) == whole


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(_wire())), max_size=8))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    wire = _wire()
    points = sorted({0, *cuts, len(wire)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(points)]
    assert _summary(_feed(pieces)) == _summary(_feed([wire]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_after_the_preface_only_fail(junk: bytes) -> None:
    server = H2Server()
    server.initiate()
    events = server.receive_data(PREFACE + junk, 0.0)
    for event in events:
        assert isinstance(event, Event)
    if any(isinstance(e, Failed) for e in events):
        assert server.failed
        assert server.data_to_send()  # a GOAWAY is queued


def test_bad_preface_fails() -> None:
    server = H2Server()
    events = server.receive_data(b"GET / HTTP/1.1\r\n\r\n", 0.0)
    assert [type(e) for e in events] == [Failed]


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10.0, burst=3.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.1)  # one token back after 1/rate seconds
    assert not bucket.take(0.1)


def test_ping_bound_is_exact() -> None:
    server = H2Server()
    server.initiate()
    pings = b"".join(frame(0x6, 0, 0, b"%08d" % i) for i in range(50))
    events = server.receive_data(PREFACE + frame(0x4, 0, 0) + pings, 0.0)
    assert not any(isinstance(e, Failed) for e in events)
    events = server.receive_data(frame(0x6, 0, 0, b"x" * 8), 0.0)
    assert [type(e) for e in events] == [Failed]


def test_header_block_bound_counts_continuations() -> None:
    server = H2Server(max_header_list_size=1000)
    server.initiate()
    server.receive_data(PREFACE + frame(0x4, 0, 0), 0.0)
    events = server.receive_data(frame(0x1, 0, 1, b"\x82" * 4000), 0.0)
    assert events == []  # 4000 bytes: within 1000 + slack, h2 holds the open block
    events = server.receive_data(frame(0x9, 0, 1, b"\x82" * 2000), 0.0)
    assert [type(e) for e in events] == [Failed]
    assert "header block" in events[0].reason  # type: ignore[attr-defined]


def test_rapid_reset_bound() -> None:
    server = H2Server(max_concurrent_streams=1000)
    server.initiate()
    client = _client()
    for _ in range(200):
        sid = _request(client)
        client.reset_stream(sid, ErrorCodes.CANCEL)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert not any(isinstance(e, Failed) for e in events)
    sid = _request(client)
    client.reset_stream(sid, ErrorCodes.CANCEL)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(events[-1], Failed)
    # Later, at the refill rate, resets are fine again (a fresh connection shows it).
    server = H2Server(max_concurrent_streams=1000)
    server.initiate()
    client = _client()
    for i in range(400):
        sid = _request(client)
        client.reset_stream(sid, ErrorCodes.CANCEL)
        events = server.receive_data(client.data_to_send(), i * 0.05)  # 20 a second
        assert not any(isinstance(e, Failed) for e in events)


def _streams(events: list[object]) -> list[Request | Refused]:
    return [e for e in events if isinstance(e, Request | Refused)]


def test_running_apps_count_against_the_stream_limit() -> None:
    server = H2Server(max_concurrent_streams=2)
    server.initiate()
    client = _client()
    for _ in range(2):
        _request(client)
    events = _streams(server.receive_data(client.data_to_send(), 0.0))
    assert [type(e) for e in events] == [Request, Request]
    # The client cancels both (h2 counts them closed), but their applications still run.
    client.reset_stream(1, ErrorCodes.CANCEL)
    client.reset_stream(3, ErrorCodes.CANCEL)
    third = _request(client)
    events = _streams(server.receive_data(client.data_to_send(), 0.0))
    assert events == [Refused(third, 0, "too many streams in progress")]
    server.stream_finished(1)
    fourth = _request(client)
    events = _streams(server.receive_data(client.data_to_send(), 0.0))
    assert [type(e) for e in events] == [Request]
    assert events[0].stream_id == fourth


def test_parse_head() -> None:
    head = parse_head(
        [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"example.com"),
            (b":path", b"/p?q"),
            (b"host", b"example.com"),
            (b"cookie", b"a=1"),
            (b"x_spoof", b"1"),
            (b"cookie", b"b=2"),
            (b"te", b"trailers"),
            (b"expect", b"100-continue"),
        ],
        max_fields=10,
    )
    assert head.headers == [
        (b"host", b"example.com"),
        (b"te", b"trailers"),
        (b"expect", b"100-continue"),
        (b"cookie", b"a=1; b=2"),
    ]
    assert head.te_trailers and head.expect_continue
    with pytest.raises(HeadError) as info:
        parse_head(
            [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b"host", b"h")]
            + [(b"x", b"y")] * 11,
            max_fields=10,
        )
    assert info.value.status == 431
    with pytest.raises(HeadError) as info:
        parse_head([(b":method", b"CONNECT"), (b":authority", b"a:1")], max_fields=10)
    assert info.value.status == 405
    head = parse_head(
        [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":path", b"/ws"),
            (b":authority", b"a"),
        ],
        max_fields=10,
    )
    assert head.websocket


def test_response_headers() -> None:
    headers, length = response_headers(
        200,
        [(b"Content-Type", b"text/plain"), (b"Connection", b"close"), (b"content-length", b"5")],
        [(b"server", b"s")],
    )
    assert headers == [
        (b":status", b"200"),
        (b"content-type", b"text/plain"),
        (b"content-length", b"5"),
        (b"server", b"s"),
    ]
    assert length == 5
    # Remembered pairs give the same answer the second time; [name, value] lists work too.
    again, _ = response_headers(
        200,
        [[b"Content-Type", b"text/plain"], (b"Connection", b"close"), (b"content-length", b"5")],
        [(b"server", b"s")],
    )
    assert again == headers
    for _ in range(2):
        with pytest.raises(ASGIProtocolError):
            response_headers(200, [(b"x", b"a\r\nb")], [])
    with pytest.raises(ASGIProtocolError):
        response_headers(200, [("x", "y")], [])


def test_graceful_goaway_keeps_streams_sendable() -> None:
    server = H2Server()
    server.initiate()
    client = _client()
    sid = _request(client)
    server.receive_data(client.data_to_send(), 0.0)
    server.data_to_send()
    server.goaway()
    assert server.send_headers(sid, [(b":status", b"200")], end_stream=True)
    out = server.data_to_send()
    kinds = []
    while out:
        length = int.from_bytes(out[:3], "big")
        kinds.append(out[3])
        out = out[9 + length :]
    assert kinds == [0x7, 0x1]  # GOAWAY, then the response HEADERS of the stream in flight
    # A stream opened after the GOAWAY is refused.
    server2 = H2Server()
    server2.initiate()
    server2.goaway()
    client2 = _client()
    sid2 = _request(client2)
    events2 = _streams(server2.receive_data(client2.data_to_send(), 0.0))
    assert events2 == [Refused(sid2, 0, "connection is going away")]


def test_header_block_of_endless_empty_continuations_fails() -> None:
    # Tiny frames never reach the size bound; h2's own cap on CONTINUATION frames ends it.
    server = H2Server()
    server.initiate()
    server.receive_data(PREFACE + frame(0x4, 0, 0), 0.0)
    assert server.receive_data(frame(0x1, 0, 1, b"\x82"), 0.0) == []
    events: list[object] = []
    for _ in range(100):
        events += server.receive_data(frame(0x9, 0, 1, b""), 0.0)
        if events:
            break
    assert [type(e) for e in events] == [Failed]


_FIELDS = [
    (b":status", b"200"),
    (b"content-type", b"text/plain"),
    (b"date", b"Sun, 06 Dec 2026 03:00:00 GMT"),
    (b"date", b"Sun, 06 Dec 2026 03:00:01 GMT"),
    (b"server", b"channels-server"),
    (b"x-big", b"v" * 3000),  # evicts others from a 4 KiB table
]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=5),
            st.sampled_from([None, 0, 256, 4096]),
            st.integers(min_value=1, max_value=3),
        ),
        max_size=10,
    )
)
def test_repeating_hpack_matches_plain_hpack(
    steps: list[tuple[list[tuple[bytes, bytes]], int | None, int]],
) -> None:
    plain_enc, fast_enc = Encoder(), RepeatingEncoder()
    plain_dec, fast_dec = Decoder(), RepeatingDecoder()
    for fields, table_size, times in steps:
        if table_size is not None:
            plain_enc.header_table_size = table_size
            fast_enc.header_table_size = table_size
        # The same list several times in a row: once its fields are indexed the block repeats,
        # which is when both repeating classes answer from memory.
        for _ in range(times):
            block = plain_enc.encode(list(fields))
            assert fast_enc.encode(list(fields)) == block
            assert fast_dec.decode(block, raw=True) == plain_dec.decode(block, raw=True)
            assert _table(fast_dec) == _table(plain_dec)


def _table(decoder: Decoder) -> list[tuple[bytes, bytes]]:
    return list(decoder.header_table.dynamic_entries)


def test_streams_the_client_makes_us_reset_count_too() -> None:
    # CVE-2025-8671 ("MadeYouReset"): no RST_STREAM from the client, but each stream gets a
    # WINDOW_UPDATE overflowing its window, which h2 answers by resetting the stream.
    server = H2Server(max_concurrent_streams=1000)
    server.initiate()
    client = _client()
    server.receive_data(client.data_to_send(), 0.0)
    events: list[object] = []
    for _ in range(300):
        sid = client.get_next_available_stream_id()
        client.send_headers(
            sid,
            [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")],
        )
        wire = client.data_to_send() + frame(0x8, 0, sid, (2**31 - 1).to_bytes(4, "big"))
        client.streams.pop(sid)  # the client's h2 would refuse later frames on it otherwise
        events += server.receive_data(wire, 0.0)
        if any(isinstance(e, Failed) for e in events):
            break
    assert sum(isinstance(e, Reset) for e in events) == 201
    assert isinstance(events[-1], Failed)


def _raw_client() -> h2.connection.H2Connection:
    """A client that sends header fields as given (no h2 checks or normalising)."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
    )
    conn.initiate_connection()
    return conn


def test_malformed_request_resets_only_its_stream() -> None:
    server = H2Server()
    server.initiate()
    server.data_to_send()
    client = _raw_client()
    client.receive_data(server.data_to_send())
    bad = client.get_next_available_stream_id()
    fields = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]
    client.send_headers(bad, [*fields, (b"X-Upper", b"1")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [e for e in events if isinstance(e, Refused)] == [
        Refused(bad, 0, "invalid field name b'X-Upper'")
    ]
    resets = [
        e
        for e in client.receive_data(server.data_to_send())
        if isinstance(e, h2.events.StreamReset)
    ]
    assert [(e.stream_id, e.error_code) for e in resets] == [(bad, ErrorCodes.PROTOCOL_ERROR)]
    # RFC 9113 section 8.1.1: a stream error, the connection goes on.
    good = _request(client)
    assert [type(e) for e in _streams(server.receive_data(client.data_to_send(), 0.0))] == [Request]
    assert good > bad and not server.failed


def test_malformed_trailers_reset_the_stream() -> None:
    server = H2Server()
    server.initiate()
    client = _raw_client()
    sid = client.get_next_available_stream_id()
    fields = [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]
    client.send_headers(sid, fields)
    client.send_data(sid, b"body")
    client.send_headers(sid, [(b":path", b"/again")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert Reset(sid) in events and not server.failed


def test_malformed_requests_count_as_resets() -> None:
    server = H2Server()
    server.initiate()
    client = _raw_client()
    fields = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]
    events: list[Event] = []
    for _ in range(300):  # more than the reset bucket holds, all at the same instant
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, [*fields, (b"te", b"gzip")], end_stream=True)
        events += server.receive_data(client.data_to_send(), 0.0)
        if server.failed:
            break
    assert isinstance(events[-1], Failed) and events[-1].reason == "rapid reset"
