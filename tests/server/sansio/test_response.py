"""``ResponseState``: remembered response header lines (``ResponseState.start``)."""

from __future__ import annotations

from typing import Any

import pytest


def response_bytes(headers: Any, default: bytes = b"date: D\r\nserver: S\r\n") -> bytes:
    from server.sansio.response import ResponseState

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
    from server.sansio.response import ASGIProtocolError, ResponseState

    pair = (b"content-length", b"3")
    for _ in range(2):
        resp = ResponseState()
        resp.start({"type": "http.response.start", "status": 200, "headers": [pair]})
        with pytest.raises(ASGIProtocolError):
            resp.body(b"toolong", False)


def test_unhashable_and_bytearray_pairs_work_and_bad_ones_are_refused() -> None:
    from server.sansio.response import ASGIProtocolError

    assert b"x-l: 1\r\n" in response_bytes([[b"x-l", b"1"]])
    assert b"x-b: 2\r\n" in response_bytes([(bytearray(b"x-b"), bytearray(b"2"))])
    for bad in ((b"x-bad", b"a\r\nb"), (b"bad name", b"v"), (b"x", "str")):
        for _ in range(2):  # a refused pair is never remembered
            with pytest.raises(ASGIProtocolError):
                response_bytes([bad])


def test_header_line_table_is_bounded() -> None:
    from server.sansio import response as http11

    for i in range(http11._FIELD_LINES_MAX * 2 + 5):
        response_bytes([(b"x-n", b"%d" % i)])
    assert 0 < len(http11._FIELD_LINES) <= http11._FIELD_LINES_MAX
