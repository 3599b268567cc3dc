"""``server.sansio.h2_head``: the request head checks that replace h2's inbound validation.

h2's own validator (``h2.utilities.validate_headers``) is the oracle: for any field list, our
check calls the request malformed (``HeadError`` with status 0) exactly when h2 would refuse it.
"""

from __future__ import annotations

import h2.exceptions
import h2.utilities
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.h2_head import HeadError, parse_head, trailers_malformed

_FLAGS = h2.utilities.HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False
)

_GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"h")]


def _h2_refuses(fields: list[tuple[bytes, bytes]]) -> bool:
    try:
        list(h2.utilities.validate_headers(fields, _FLAGS))
    except h2.exceptions.ProtocolError:
        return True
    return False


def _ours_refuses(fields: list[tuple[bytes, bytes]]) -> bool:
    try:
        parse_head(fields, max_fields=100)
    except HeadError as exc:
        return exc.status == 0
    return False


_NAMES = st.sampled_from(
    [
        b":method",
        b":scheme",
        b":path",
        b":authority",
        b":protocol",
        b":status",
        b":other",
        b"host",
        b"te",
        b"connection",
        b"transfer-encoding",
        b"cookie",
        b"x-a",
        b"x_a",
        b"X-Up",
        b"a:b",
        b"",
        b"sp ace",
        b"caf\xc3\xa9",
        b"content-length",
    ]
)
_VALUES = st.sampled_from(
    [
        *(b"", b"v", b" v", b"v\t", b"a\nb", b"a\rb", b"a\0b", b"trailers", b"TRAILERS"),
        *(b"gzip", b"GET", b"CONNECT", b"OPTIONS", b"/", b"*", b"websocket", b"h", b"https", b"1"),
    ]
)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.tuples(_NAMES, _VALUES), max_size=8),
    st.lists(st.tuples(_NAMES, _VALUES), max_size=3),
)
def test_malformed_exactly_when_h2_would_refuse(
    random: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> None:
    for fields in (random, _GET + extra):
        assert _ours_refuses(fields) == _h2_refuses(fields), fields


@pytest.mark.parametrize(
    "fields",
    [
        [*_GET, (b"X-Up", b"1")],  # upper case name (RFC 9113 section 8.2.1)
        [*_GET, (b"x", b"a\r\nb")],
        [*_GET, (b"x", b" padded")],
        [*_GET, (b"connection", b"close")],  # RFC 9113 section 8.2.2
        [*_GET, (b"te", b"gzip")],
        [(b"x", b"1"), *_GET],  # pseudo-header after a regular field (section 8.3)
        [*_GET[:3], (b":method", b"GET"), (b":authority", b"h")],
        [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"h")],  # no :scheme
        [*_GET, (b"host", b"other")],  # :authority and Host differ (section 8.3.1)
        [*_GET, (b":protocol", b"websocket")],  # :protocol outside CONNECT (RFC 8441)
        [*_GET, (b":status", b"200")],
    ],
)
def test_malformed_heads(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(HeadError) as info:
        parse_head(fields, max_fields=100)
    assert info.value.status == 0


def test_trailers() -> None:
    assert trailers_malformed([(b"x-checksum", b"abc")]) is None
    assert trailers_malformed([(b":path", b"/")]) == "pseudo-header field in trailers"
    assert trailers_malformed([(b"X-Up", b"1")]) is not None
    assert trailers_malformed([(b"x", b"a\nb")]) is not None
    assert trailers_malformed([(b"transfer-encoding", b"chunked")]) is not None


def test_a_repeated_head_is_a_fresh_copy() -> None:
    fields = [*_GET, (b"accept", b"*/*")]
    first = parse_head(fields, max_fields=100)
    first.headers.append((b"x-added-by-the-app", b"1"))
    second = parse_head(list(fields), max_fields=100)
    assert second is not first
    assert second.headers == [(b"host", b"h"), (b"accept", b"*/*")]
    # The limit is part of what was decided: a smaller one is applied, not the remembered head.
    with pytest.raises(HeadError) as info:
        parse_head(fields, max_fields=0)
    assert info.value.status == 431


def test_only_heads_of_a_browsers_size_are_remembered() -> None:
    from server.sansio import h2_head

    h2_head._HEADS.clear()
    parse_head([*_GET, (b"cookie", b"c" * 100)], max_fields=100)
    parse_head([*_GET, (b"cookie", b"c" * (h2_head._HEAD_BYTES + 1))], max_fields=100)
    assert len(h2_head._HEADS) == 1
