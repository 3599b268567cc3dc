"""The two paths of ``HTTP11Connection``: heads in the strict subset (and their Content-Length
bodies) are read without h11, the rest by h11.  Which path reads a cycle must never change the
events: every stream is compared with the h11-only reference run."""

from __future__ import annotations

from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.http11 import (
    NEED_DATA,
    PAUSED,
    EndOfMessage,
    HTTP11Connection,
    RequestHead,
)
from tests.support.http11 import drive_cycles

GET = b"GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
GET_OTHER = b"GET /a?x=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
GET_10 = b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
UPGRADE = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
EXPECT = b"GET /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"
BAD_HOST = b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"
PIECES = [GET, GET, GET_OTHER, GET_CLOSE, GET_10, POST, CHUNKED, EXPECT, b"\r\n", BAD_HOST]


def drive(chunks: list[bytes], *, eof: bool = False, cache: bool = True) -> list[Any]:
    """Events over all cycles; ``cache=False`` is the h11-only reference run."""
    return drive_cycles(chunks, eof=eof, reference=not cache)


def count_h11_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = h11.Connection.next_event

    def spy(self: h11.Connection) -> Any:
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(h11.Connection, "next_event", spy)
    return calls


def test_strict_heads_never_reach_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_h11_parses(monkeypatch)
    get_10 = b"GET /old HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"
    stream = [GET * 3 + GET_OTHER + get_10 + POST]
    events = drive(stream)
    assert calls[0] == 0
    assert [e[2] for e in events if e[0] == "head"] == [
        b"/a?x=1",
        b"/a?x=1",
        b"/a?x=1",
        b"/a?x=2",
        b"/old",
        b"/p",
    ]
    assert ("data", b"hello") in events
    assert events == drive(stream, cache=False)


@pytest.mark.parametrize(
    ("head", "h11_reads"),
    [
        (POST, False),
        (UPGRADE, False),
        (EXPECT, False),
        (CHUNKED, True),
        (BAD_HOST, False),
        (GET_10, True),  # no Host field: outside the strict subset, h11 decides
    ],
)
def test_which_path_reads_a_head(
    monkeypatch: pytest.MonkeyPatch, head: bytes, h11_reads: bool
) -> None:
    calls = count_h11_parses(monkeypatch)
    events = drive([head])
    assert (calls[0] > 0) is h11_reads
    assert events == drive([head], cache=False)


def test_head_split_over_reads_is_still_strict_and_correct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_h11_parses(monkeypatch)
    chunks = [GET[:10], GET[10:], GET[:1], GET[1:]]
    assert drive(chunks) == drive(chunks, cache=False)
    calls[0] = 0
    conn = HTTP11Connection()
    conn.receive_data(GET[:10])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(GET[10:])
    assert isinstance(conn.next_event(), RequestHead)
    assert calls[0] == 0


def test_reused_head_gets_a_fresh_header_list() -> None:
    conn = HTTP11Connection()
    conn.receive_data(GET + GET)
    first = conn.next_event()
    assert isinstance(first, RequestHead)
    first.headers.append((b"x-added-by", b"app"))  # an app may mutate scope["headers"]
    assert isinstance(conn.next_event(), EndOfMessage)
    assert conn.next_event() is PAUSED
    conn.start_next_cycle()
    second = conn.next_event()
    assert isinstance(second, RequestHead)
    assert second.headers == [(b"host", b"example.com"), (b"user-agent", b"t")]
    assert second.headers is not first.headers


def test_eof_after_a_strict_head() -> None:
    for tail in (b"", GET[:7], b"garbage\r\n\r\n"):
        stream = [GET + GET + tail]
        assert drive(stream, eof=True) == drive(stream, eof=True, cache=False)
    events = drive([GET + GET + GET[:7]], eof=True)
    assert events[-1] == ("error", 400)
    assert drive([GET + GET], eof=True)[-1] == ("closed",)


def test_buffered_counts_held_bytes() -> None:
    conn = HTTP11Connection()
    conn.receive_data(GET + GET + GET[:5])
    conn.next_event()
    conn.next_event()
    conn.start_next_cycle()
    assert isinstance(conn.next_event(), RequestHead)
    assert conn.buffered == 5


@given(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=600), max_size=8),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_any_mix_and_split_gives_the_reference_events(
    pieces: list[bytes], cuts: list[int], eof: bool
) -> None:
    stream = b"".join(pieces)
    points = sorted({c for c in cuts if c < len(stream)})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    chunks = [c for c in chunks if c]
    reference = drive([stream], eof=eof, cache=False)
    assert drive(chunks, eof=eof) == reference
    assert drive([stream], eof=eof) == reference
