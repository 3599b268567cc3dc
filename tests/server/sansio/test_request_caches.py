"""The parser's bounded tables (server.sansio.request): validated field lines, special lines,
list-field tokens and head facts stay within their caps whatever clients send, long lines are
never kept, and a head parsed from the tables equals one parsed afresh."""

from __future__ import annotations

from server.sansio import request
from server.sansio.limits import Limits
from server.sansio.request import parse_head

LIMITS = Limits()


def head(i: int, extra: bytes = b"") -> bytes:
    return (
        b"GET /p HTTP/1.1\r\nHost: h%d.example\r\nX-Seq: %d\r\nConnection: keep-alive, x%d\r\n"
        % (i, i, i)
        + extra
        + b"\r\n"
    )


def test_tables_stay_within_their_caps() -> None:
    for i in range(3 * request._LINES_MAX):
        assert parse_head(head(i), LIMITS) is not None
    assert len(request._LINES) <= request._LINES_MAX
    assert len(request._SPECIAL) <= request._SPECIAL_MAX
    assert len(request._FACTS) <= request._FACTS_MAX
    assert len(request._TOKENS) <= 256


def test_long_lines_are_not_kept() -> None:
    long_value = b"v" * (request._LINE_MAX + 1)
    parsed = parse_head(head(1, b"X-Long: " + long_value + b"\r\n"), LIMITS)
    assert parsed is not None and (b"x-long", long_value) in parsed.headers
    assert not any(len(line) > request._LINE_MAX for line in request._LINES)
    assert not any(len(line) > request._LINE_MAX for line in request._SPECIAL)


def test_a_head_from_the_tables_equals_a_fresh_parse() -> None:
    data = head(7, b"Accept: */*\r\n")
    first = parse_head(data, LIMITS)
    again = parse_head(data, LIMITS)  # every line and the facts now come from the tables
    request._LINES.clear()
    request._SPECIAL.clear()
    request._FACTS.clear()
    request._TOKENS.clear()
    fresh = parse_head(data, LIMITS)
    assert first is not None and again is not None and fresh is not None
    for parsed in (first, again):
        assert {s: getattr(parsed, s) for s in request.RequestHead.__slots__} == {
            s: getattr(fresh, s) for s in request.RequestHead.__slots__
        }
    assert again.headers is not first.headers  # each request owns its list
