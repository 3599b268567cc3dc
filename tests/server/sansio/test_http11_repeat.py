"""The repeated-head cache of ``HTTP11Connection``: a head whose exact bytes h11 already parsed
on this connection is reused instead of parsed again.  It must never change the events."""

from __future__ import annotations

from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.http11 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    HTTP11Connection,
    RequestError,
    RequestHead,
)

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


class NoCache(HTTP11Connection):
    """Every event comes from h11 itself: no head is remembered and no EndOfMessage is
    skipped (the reference behaviour)."""

    __slots__ = ()

    def _plain(self, request: h11.Request, head: RequestHead) -> bool:
        return False


def drive(chunks: list[bytes], *, eof: bool = False, cache: bool = True) -> list[Any]:
    """Events over all cycles (body data merged); ``cache=False`` is the reference run."""
    conn = HTTP11Connection() if cache else NoCache()
    out: list[Any] = []

    def pump() -> bool:
        while True:
            try:
                event = conn.next_event()
            except RequestError as exc:
                out.append(("error", exc.status))
                return False
            if isinstance(event, RequestHead):
                out.append(
                    (
                        "head",
                        event.method,
                        event.target,
                        event.http_version,
                        tuple(event.headers),
                        event.keep_alive,
                        event.has_body,
                        event.expect_continue,
                        event.websocket,
                    )
                )
            elif isinstance(event, Data):
                if out and out[-1][0] == "data":
                    out[-1] = ("data", out[-1][1] + bytes(event.data))
                else:
                    out.append(("data", bytes(event.data)))
            elif isinstance(event, EndOfMessage):
                out.append(("end",))
            elif isinstance(event, ConnectionClosed):
                out.append(("closed",))
                return False
            elif event is PAUSED:
                if conn.head is not None and not conn.head.keep_alive:
                    out.append(("close-after",))
                    return False
                conn.start_next_cycle()
            elif event is NEED_DATA:
                return True

    for chunk in chunks:
        conn.receive_data(chunk)
        if not pump():
            return out
    if eof:
        conn.receive_eof()
        pump()
    return out


def count_h11_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = h11.Connection.next_event

    def spy(self: h11.Connection) -> Any:
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(h11.Connection, "next_event", spy)
    return calls


def test_identical_heads_are_parsed_by_h11_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_h11_parses(monkeypatch)
    events = drive([GET * 5])
    # h11: the first head only (its EndOfMessage is implied); the 4 repeats need none.
    assert calls[0] == 1
    assert events == drive([GET * 5], cache=False)
    assert events.count(("end",)) == 5


def test_a_different_head_goes_to_h11_and_replaces_the_cached_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_h11_parses(monkeypatch)
    stream = [GET, GET, GET_OTHER, GET_OTHER, GET]
    events = drive(stream)
    assert calls[0] == 3  # GET, GET_OTHER, GET: each parsed once after a change
    assert events == drive(stream, cache=False)
    assert [e[2] for e in events if e[0] == "head"] == [
        b"/a?x=1",
        b"/a?x=1",
        b"/a?x=2",
        b"/a?x=2",
        b"/a?x=1",
    ]


@pytest.mark.parametrize("head", [POST, CHUNKED, UPGRADE, EXPECT])
def test_heads_with_body_upgrade_or_expect_are_never_reused(
    monkeypatch: pytest.MonkeyPatch, head: bytes
) -> None:
    conn = HTTP11Connection()
    conn.receive_data(head)
    assert isinstance(conn.next_event(), RequestHead)
    assert conn._repeat_template is None


def test_head_split_over_reads_is_not_remembered_but_still_correct() -> None:
    chunks = [GET[:10], GET[10:], GET]
    assert drive(chunks) == drive(chunks, cache=False)
    conn = HTTP11Connection()
    conn.receive_data(GET[:10])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(GET[10:])
    assert isinstance(conn.next_event(), RequestHead)
    assert conn._repeat_template is None


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


def test_eof_after_a_reused_head() -> None:
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


# --- remembered response header lines (ResponseState.start) ------------------------------


def response_bytes(headers: Any, default: bytes = b"date: D\r\nserver: S\r\n") -> bytes:
    from server.sansio.http11 import ResponseState

    resp = ResponseState()
    resp.start({"type": "http.response.start", "status": 200, "headers": headers}, default)
    return b"".join(bytes(p) for p in resp.body(b"hello", False))


def test_repeated_header_pairs_give_the_same_response() -> None:
    headers = [(b"content-type", b"text/plain"), (b"Content-Length", b"5"), (b"x-a", b"1")]
    first = response_bytes(headers)
    assert first == response_bytes(list(headers)) == response_bytes(headers)
    assert first.count(b"content-length: 5\r\n") == 1 and b"Content-Length" not in first
    # The app's own Date/Server still replace ours when their lines come from the table.
    own = [(b"date", b"mine"), (b"server", b"me")]
    for _ in range(2):
        out = response_bytes(own)
        assert b"date: mine\r\n" in out and b"server: me\r\n" in out
        assert b"date: D" not in out and b"server: S" not in out


def test_remembered_content_length_still_frames_the_body() -> None:
    from server.sansio.http11 import ASGIProtocolError, ResponseState

    pair = (b"content-length", b"3")
    for _ in range(2):
        resp = ResponseState()
        resp.start({"type": "http.response.start", "status": 200, "headers": [pair]})
        with pytest.raises(ASGIProtocolError):
            resp.body(b"toolong", False)


def test_unhashable_and_bytearray_pairs_work_and_bad_ones_are_refused() -> None:
    from server.sansio.http11 import ASGIProtocolError

    assert b"x-l: 1\r\n" in response_bytes([[b"x-l", b"1"]])
    assert b"x-b: 2\r\n" in response_bytes([(bytearray(b"x-b"), bytearray(b"2"))])
    for bad in ((b"x-bad", b"a\r\nb"), (b"bad name", b"v"), (b"x", "str")):
        for _ in range(2):  # a refused pair is never remembered
            with pytest.raises(ASGIProtocolError):
                response_bytes([bad])


def test_header_line_table_is_bounded() -> None:
    from server.sansio import http11

    for i in range(http11._FIELD_LINES_MAX * 2 + 5):
        response_bytes([(b"x-n", b"%d" % i)])
    assert 0 < len(http11._FIELD_LINES) <= http11._FIELD_LINES_MAX
