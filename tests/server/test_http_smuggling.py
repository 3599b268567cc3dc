"""Request smuggling over real sockets: ambiguous framing, Host and request-target rules,
header limits and response splitting, as a client on the wire sees them."""

from __future__ import annotations

from typing import Any

import pytest

from server.types import Receive, Scope, Send
from tests.support.http_exchange import echo_app, exchange, statuses
from tests.support.live import serve

pytestmark = pytest.mark.timeout(30)

OPTS: dict[str, Any] = {"access_log": False}


# --- request framing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        # RFC 9112 section 6.3: Transfer-Encoding with Content-Length -> reject and close
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        # conflicting duplicate Content-Length
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\n"
        b"abcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        # whitespace between field name and colon (RFC 9112 section 5.1: MUST reject)
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc",
        # bare CR inside a field (RFC 9112 section 2.2)
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rGET /smuggled HTTP/1.1\r\n\r\n",
        # invalid chunk sizes
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
        # a chunk size that overflows 64 bits in other parsers (RFC 9112 section 7.1:
        # recipients MUST anticipate large sizes and prevent integer overflow)
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10000000000000003\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        # chunked not the final coding (RFC 9112 section 6.3 point 4) / unknown coding
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        # Host rules (RFC 9112 section 3.2): missing, duplicated, invalid
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n",
        # non-ASCII octets in the request-target
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        # HTTP/0.9 style request line
        b"GET /\r\n\r\n",
        # request-targets in no form of RFC 9112 section 3.2
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
)
async def test_malformed_framing_rejected_without_reaching_app(raw: bytes) -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["raw_path"].decode())
        await echo_app(scope, receive, send)

    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, raw)
    codes = statuses(data)
    assert len(codes) == 1 and 400 <= codes[0] < 600, data
    assert b"connection: close" in data
    assert "/smuggled" not in calls


async def test_http10_chunked_request_closes_connection() -> None:
    # RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing;
    # the connection MUST be closed after processing it, even with keep-alive.
    raw = (
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    )
    async with serve(echo_app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert b"/smuggled" not in data
    assert len(statuses(data)) == 1


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (b"example.com", 200),
        (b"example.com:8000", 200),
        (b"127.0.0.1:80", 200),
        (b"[::1]:8000", 200),
        (b"", 200),  # RFC 9112 section 3.2: empty when the target has no authority
        (b"xn--bcher-kva.example", 200),
        (b"a,b", 200),  # sub-delims are legal in a reg-name (RFC 3986 section 3.2.2)
    ],
)
async def test_valid_host_values_accepted(host: bytes, expected: int) -> None:
    async with serve(echo_app, **OPTS) as srv:
        data = await exchange(
            srv, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        )
    assert statuses(data) == [expected]


async def test_absolute_form_and_asterisk_targets() -> None:
    seen: list[tuple[str, bytes, bytes]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["path"], scope["raw_path"], scope["query_string"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    raw = (
        b"GET http://example.com/a%2Fb/%C3%A9?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"GET HTTP://EXAMPLE.COM:80/up?y HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"GET https://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    )
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert statuses(data) == [204, 204, 204, 204]
    assert seen == [
        ("/a/b/\u00e9", b"/a%2Fb/%C3%A9", b"x=1"),
        ("/up", b"/up", b"y"),
        ("/", b"/", b"q"),
        ("*", b"*", b""),
    ]


async def test_header_names_with_underscores_are_dropped() -> None:
    # CVE-2015-0219: "Remote_User" would reach Django as HTTP_REMOTE_USER, the same key as a
    # "Remote-User" set by an authenticating proxy (which only strips the dashed spelling).
    seen: list[list[tuple[bytes, bytes]]] = []
    trailers: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(list(scope["headers"]))
        trailers.append("http.response.trailers" in scope["extensions"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    raw = (
        b"GET / HTTP/1.1\r\nHost: a\r\nRemote_User: admin\r\nX-Real: 1\r\n"
        b"TE: gzip\r\nTE: trailers\r\nConnection: close\r\n\r\n"
    )
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert statuses(data) == [204]
    names = [name for name, _ in seen[0]]
    assert b"remote_user" not in names
    assert b"x-real" in names and b"host" in names
    assert trailers == [True]  # "trailers" in the second of two TE fields still counts


async def test_other_upgrades_are_plain_requests_and_connect_is_refused() -> None:
    # CONNECT asks for a tunnel no ASGI app can give (RFC 9110 section 9.3.6): 400, and the
    # connection ends there (what follows is not read as a request).
    raw = (
        b"GET /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"
        b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    async with serve(echo_app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert statuses(data) == [200, 400]
    assert b"GET /h2c " in data and b"CONNECT a:443 " not in data and b"GET /last " not in data


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        (b"X: " + b"v" * 60_000 + b"\r\n", 200),  # big but within --limit-request-header-size
        (b"X: " + b"v" * 66_000 + b"\r\n", 431),
        (b"".join(b"X-%d: v\r\n" % i for i in range(98)), 200),  # 100 fields with Host + close
        (b"".join(b"X-%d: v\r\n" % i for i in range(99)), 431),
    ],
)
async def test_header_limits_at_the_boundary(extra: bytes, status: int) -> None:
    async with serve(echo_app, **OPTS) as srv:
        data = await exchange(
            srv, b"GET / HTTP/1.1\r\nHost: a\r\n" + extra + b"Connection: close\r\n\r\n"
        )
    assert statuses(data) == [status]


async def test_absolute_form_authority_is_the_host_the_app_sees() -> None:
    # RFC 9112 section 3.2.2: with an absolute-form target the Host field MUST be ignored;
    # Django's ALLOWED_HOSTS check must see the host the request is really addressed to.
    hosts: list[list[bytes]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        hosts.append([value for name, value in scope["headers"] if name == b"host"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    raw = (
        b"GET http://allowed.example/p HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    async with serve(app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert statuses(data) == [204]
    assert hosts == [[b"allowed.example"]]


async def test_bare_lf_line_endings_are_accepted() -> None:
    # RFC 9112 section 2.2: a recipient MAY recognize a single LF as a line terminator.  (A
    # bare CR is refused: see test_malformed_framing_rejected_without_reaching_app.)
    raw = (
        b"POST /a HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc"
        b"GET /b HTTP/1.1\nHost: a\nConnection: close\n\n"
    )
    async with serve(echo_app, **OPTS) as srv:
        data = await exchange(srv, raw)
    assert statuses(data) == [200, 200]
    assert b"POST /a abc" in data and data.endswith(b"GET /b ")
