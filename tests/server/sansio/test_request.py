"""The strict request-head parser against its oracle, h11.

For any head, ``parse_head`` either declines (h11 decides) or yields exactly what h11 yields:
method, target, version, the fields in order, the framing.  And a whole connection gives the
same events (errors included) whether the strict parser is on or not, fed whole or one byte at
a time.  Generated heads are valid, near-valid and hostile; a corpus holds the known request
smuggling shapes.
"""

from __future__ import annotations

from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.limits import Limits
from server.sansio.request import RequestHead, parse_head
from tests.support.http11 import drive_cycles


def h11_view(data: bytes) -> tuple[Any, ...] | None:
    """What h11 makes of a head: None if it refuses it."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    assert isinstance(event, h11.Request), event
    fields = [(n, v) for _raw, n, v in event.headers._full_items if b"_" not in n]
    length = [v for n, v in fields if n == b"content-length"]
    chunked = any(n == b"transfer-encoding" for n, _ in fields)
    return (
        event.method,
        event.target,
        event.http_version,
        fields,
        int(length[0]) if length else None,
        chunked,
    )


def strict_view(head: RequestHead) -> tuple[Any, ...]:
    return (
        head.method,
        head.target,
        head.http_version,
        head.headers,
        head.content_length,
        head.chunked,
    )


def same_events(stream: bytes, *, eof: bool = True) -> list[Any]:
    """The events of ``stream`` fed whole and one byte at a time, checked equal to the
    h11-only reference run; returns them."""
    reference = drive_cycles([stream], eof=eof, reference=True)
    assert drive_cycles([stream], eof=eof) == reference
    assert drive_cycles([stream[i : i + 1] for i in range(len(stream))], eof=eof) == reference
    return reference


# --- generated heads ----------------------------------------------------------------------

METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"get", b"X-Y~", b"G ET", b"", b"G\x00"]
TARGETS = [
    b"/",
    b"/a/b?c=d&e",
    b"/%zz%20",
    b"/caf\xc3\xa9",
    b"/a\x7fb",
    b"*",
    b"http://h/x",
    b"h:443",
    b"/a b",
    b"",
]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1", b"HTTP/1.10"]
NAMES = [
    b"Host",
    b"host",
    b"HOST",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Connection",
    b"Expect",
    b"Upgrade",
    b"TE",
    b"X_Under",
    b"X-A",
    b"Cookie",
    b"Bad Name",
    b"",
    b"X\x01",
]
SEPARATORS = [b":", b": ", b" :", b":\t", b":  ", b": \t "]
VALUES = [
    b"h",
    b"example.com:8080",
    b"",
    b"0",
    b"5",
    b"5, 5",
    b"5,6",
    b"-1",
    b"+5",
    b"0x5",
    b"1" * 19,
    b"1" * 21,
    b"chunked",
    b"gzip, chunked",
    b"close",
    b"keep-alive, Upgrade",
    b"websocket",
    b"100-continue",
    b"trailers",
    b"a b\tc",
    b"a \x01b",
    b"a\x7f",
    b"\xff\xfe",
    b"a\x00b",
    b"a\x0bb",
    b"v ",
]
ENDINGS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\n "]


def mostly(good: list[bytes], every: list[bytes]) -> st.SearchStrategy[bytes]:
    """Usually one of the ``good`` choices, sometimes any: near-valid heads, so that both
    the strict path and the declines are well covered."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(every))


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    line = (
        draw(mostly(METHODS[:5], METHODS))
        + b" "
        + draw(mostly(TARGETS[:4], TARGETS))
        + b" "
        + draw(mostly(VERSIONS[:2], VERSIONS))
        + draw(mostly([b"\r\n"], ENDINGS))
    )
    fields = draw(
        st.lists(
            st.tuples(
                mostly(NAMES[:12], NAMES),
                mostly([b": ", b":"], SEPARATORS),
                mostly(VALUES[:20], VALUES),
                mostly([b"\r\n"], ENDINGS),
            ),
            max_size=8,
        )
    )
    if draw(st.booleans()):  # mostly a valid Host first, as real clients send
        fields.insert(0, (b"Host", b": ", b"example.com", b"\r\n"))
    end = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"]))
    return line + b"".join(n + s + v + e for n, s, v, e in fields) + end


TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FIELD_BYTES = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100)) + b" \t"
VCHAR_TABLE = bytes(0x21 + x % 94 for x in range(256))  # any byte to a visible ASCII one


@st.composite
def clean_heads(draw: st.DrawFn) -> bytes:
    """Heads mostly inside the strict subset: any token names, any visible values with inner
    whitespace and OWS around them, a Host among them, occasionally one odd byte."""
    names = st.binary(min_size=1, max_size=12).map(
        lambda b: bytes(TCHARS[x % len(TCHARS)] for x in b)
    )
    values = st.binary(max_size=30).map(
        lambda b: bytes(FIELD_BYTES[x % len(FIELD_BYTES)] for x in b)
    )
    ows = st.sampled_from([b"", b" ", b"\t", b"  "])
    fields = draw(st.lists(st.tuples(names, ows, values, ows), max_size=10))
    lines = [n + b":" + a + v + z + b"\r\n" for n, a, v, z in fields]
    lines.insert(draw(st.integers(0, len(lines))), b"Host: h\r\n")
    target = b"/" + draw(st.binary(max_size=20)).translate(VCHAR_TABLE)
    head = b"GET " + target + b" HTTP/1.1\r\n" + b"".join(lines) + b"\r\n"
    if draw(st.integers(0, 9)) == 0:  # one odd byte somewhere
        at = draw(st.integers(0, len(head) - 1))
        head = head[:at] + bytes([draw(st.integers(0, 255))]) + head[at + 1 :]
    return head


bodies = st.sampled_from([b"", b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"GET "])


def check_agrees(head: bytes) -> None:
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return  # the connection hands it to h11 unread (test below)
    data = head[: end + 4]
    ours = parse_head(data, Limits())
    if ours is not None:
        assert strict_view(ours) == h11_view(data)


@given(heads())
@settings(max_examples=800, deadline=None)
def test_strict_parser_declines_or_agrees_with_h11(head: bytes) -> None:
    check_agrees(head)


@given(clean_heads())
@settings(max_examples=500, deadline=None)
def test_clean_heads_are_taken_as_h11_reads_them(head: bytes) -> None:
    check_agrees(head)
    same_events(head)


@given(heads(), bodies, st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_connection_gives_the_reference_events(head: bytes, body: bytes, eof: bool) -> None:
    same_events(head + body, eof=eof)


@given(st.lists(heads(), min_size=1, max_size=3), bodies)
@settings(max_examples=150, deadline=None)
def test_pipelined_heads_give_the_reference_events(heads_: list[bytes], body: bytes) -> None:
    same_events(body.join(heads_), eof=False)


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_random_bytes_give_the_reference_events(data: bytes) -> None:
    same_events(b"GET / HTTP/1.1\r\n" + data)


# --- the smuggling corpus -----------------------------------------------------------------

H = b"POST / HTTP/1.1\r\nHost: h\r\n"
CORPUS: list[tuple[str, bytes, int | None]] = [
    # (case, request, status of the error it must end with; None: it is served)
    ("duplicate equal CL", H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", None),
    ("conflicting CL", H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("CL list", H + b"Content-Length: 3, 4\r\n\r\nabcd", 400),
    ("CL sign", H + b"Content-Length: +3\r\n\r\nabc", 400),
    ("CL hex", H + b"Content-Length: 0x3\r\n\r\nabc", 400),
    ("CL space inside", H + b"Content-Length: 1 2\r\n\r\n" + b"a" * 12, 400),
    ("CL and TE", H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE and CL", H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    ("TE gzip, chunked", H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (
        "TE chunked twice",
        H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        501,
    ),
    ("TE xchunked", H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
    ("TE space before colon", H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE tab value", H + b"Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", None),
    ("TE obs-fold", H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
    ("CL obs-fold", H + b"Content-Length:\r\n 3\r\n\r\nabc", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: h\n\n", None),
    ("bare LF inside", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\nContent-Length: 3\r\n\r\nabc", None),
    ("bare CR", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400),
    ("CTL in value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400),
    ("DEL in value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", 400),
    ("ESC in CL", H + b"Content-Length: 3\x1b\r\n\r\nabc", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("no Host 1.1", b"GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400),
    ("no Host 1.0", b"GET / HTTP/1.0\r\nX: 1\r\n\r\n", None),
    ("bad Host", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("CONNECT", b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400),
    ("authority-form GET", b"GET h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("absolute-form", b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n", None),
    ("HTTP/2.0 line", b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
    ("underscore name", b"GET / HTTP/1.1\r\nHost: h\r\nX_Auth: 1\r\n\r\n", None),
    (
        "CL body then pipelined",
        H + b"Content-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        None,
    ),
    ("CL zero", H + b"Content-Length: 0\r\n\r\n", None),
    ("huge CL", H + b"Content-Length: 99999999999999999999\r\n\r\n", None),
    ("chunk ext", H + b"Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n", None),
    ("leading CRLF", b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", None),
]


@pytest.mark.parametrize(("case", "request_", "status"), CORPUS, ids=[c[0] for c in CORPUS])
def test_smuggling_corpus(case: str, request_: bytes, status: int | None) -> None:
    events = same_events(request_, eof=False)
    errors = [e for e in events if e[0] == "error"]
    if status is None:
        assert not errors, events
        assert events[0][0] == "head"
    else:
        assert errors == [("error", status)], events


def test_strict_path_yields_what_h11_yields_for_a_browser_head() -> None:
    from benchmarks.micro.http_cycle import browser_head

    data = browser_head(7)
    ours = parse_head(data, Limits())
    assert ours is not None
    assert strict_view(ours) == h11_view(data)
    assert len(ours.headers) == 13


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost:h\r\n\r\n",  # no space after the colon
        b"GET / HTTP/1.1\r\nHost: h \t\r\nX-E:\r\nX-F:  \r\n\r\n",  # OWS and empty values
        b"GET / HTTP/1.0\r\nhOsT: h\r\nConnection: Keep-Alive\r\n\r\n",
        b"GET /?a=b:c HTTP/1.1\r\nHost: h\r\nReferer: http://x/y: z\r\n\r\n",
    ],
)
def test_strict_path_takes_valid_variants(data: bytes) -> None:
    ours = parse_head(data, Limits())
    assert ours is not None
    assert strict_view(ours) == h11_view(data)


def test_limits_send_a_head_to_h11() -> None:
    data = b"GET /long HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"
    assert parse_head(data, Limits()) is not None
    assert parse_head(data, Limits(line=10)) is None
    assert parse_head(data, Limits(headers=2)) is None
    assert parse_head(data, Limits(size=10)) is None
