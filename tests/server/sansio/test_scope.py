"""ASGI scope building: paths, root_path, client/server and proxy headers."""

from __future__ import annotations

from typing import Any

import pytest

from server.sansio.http11 import HTTP11Connection, RequestHead
from server.sansio.scope import (
    ConnectionInfo,
    TrustedProxies,
    decode_path,
    http_scope,
    parse_forwarded,
    split_target,
    websocket_scope,
)


def head_of(target: bytes, *headers: bytes, version: bytes = b"1.1") -> RequestHead:
    conn = HTTP11Connection()
    conn.receive_data(
        b"GET "
        + target
        + b" HTTP/"
        + version
        + b"\r\nHost: h\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
    )
    event = conn.next_event()
    assert isinstance(event, RequestHead)
    return event


def info(**kw: Any) -> ConnectionInfo:
    base: dict[str, Any] = {
        "peername": ("127.0.0.1", 5000),
        "sockname": ("127.0.0.1", 8000),
        "secure": False,
    }
    base.update(kw)
    return ConnectionInfo(**base)


def test_basic_http_scope() -> None:
    scope = http_scope(
        head_of(b"/caf%C3%A9/a%2Fb?q=%20x&y=1"),
        info(),
        lifespan_state={"db": 1},
        extensions={"http.response.pathsend": {}},
    )
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/a/b"
    assert scope["raw_path"] == b"/caf%C3%A9/a%2Fb"
    assert scope["query_string"] == b"q=%20x&y=1"
    assert scope["root_path"] == ""
    assert scope["headers"] == [(b"host", b"h")]
    assert scope["client"] == ("127.0.0.1", 5000)
    assert scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {"db": 1}
    assert scope["extensions"] == {"http.response.pathsend": {}}


def test_state_is_a_shallow_copy() -> None:
    shared: dict[str, Any] = {"k": []}
    scope = http_scope(head_of(b"/"), info(), lifespan_state=shared)
    scope["state"]["new"] = 1
    assert "new" not in shared and scope["state"]["k"] is shared["k"]


def test_root_path_prefixes_path() -> None:
    scope = http_scope(head_of(b"/x?a"), info(root_path="/api"))
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/x"
    assert scope["raw_path"] == b"/api/x"


def test_secure_unix_and_http10() -> None:
    scope = http_scope(head_of(b"/", version=b"1.0"), info(secure=True, peername="", sockname="/s"))
    assert scope["scheme"] == "https"
    assert scope["client"] is None and scope["server"] is None
    assert scope["http_version"] == "1.0"


@pytest.mark.parametrize(
    ("target", "raw", "query"),
    [
        (b"/a?b=c?d", b"/a", b"b=c?d"),
        (b"http://example.com/p/q?x=1", b"/p/q", b"x=1"),
        (b"https://example.com", b"/", b""),
        (b"http://example.com?x", b"/", b"x"),
        (b"*", b"*", b""),
        (b"/", b"/", b""),
    ],
)
def test_split_target(target: bytes, raw: bytes, query: bytes) -> None:
    assert split_target(target) == (raw, query)


def test_decode_path_invalid_utf8_is_replaced() -> None:
    assert decode_path(b"/%FF") == "/\ufffd"
    assert decode_path(b"/plain") == "/plain"


def test_websocket_scope() -> None:
    head = head_of(b"/ws?t=1", b"Connection: Upgrade", b"Upgrade: websocket")
    scope = websocket_scope(head, info())
    assert scope["type"] == "websocket" and scope["scheme"] == "ws"
    assert scope["path"] == "/ws" and scope["query_string"] == b"t=1"
    assert "method" not in scope
    assert websocket_scope(head, info(secure=True))["scheme"] == "wss"


def test_trusted_proxies() -> None:
    t = TrustedProxies(["10.0.0.0/8", "192.168.1.1", "unix:", "::1"])
    assert "10.2.3.4" in t and "192.168.1.1" in t and "::1" in t and "unix:" in t
    assert "192.168.1.2" not in t and "11.0.0.1" not in t and "garbage" not in t
    assert "1.2.3.4" in TrustedProxies(["*"])
    assert "10.0.0.1" in TrustedProxies(["127.0.0.1, 10.0.0.0/8"])


def test_parse_forwarded() -> None:
    value = 'for=192.0.2.60;proto=HTTPS;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for=x;a'
    assert parse_forwarded(value) == [
        {"for": "192.0.2.60", "proto": "HTTPS", "by": "203.0.113.43"},
        {"for": "[2001:db8:cafe::17]:4711"},
        {"for": "x"},
    ]
    assert parse_forwarded('for="a\\"b"') == [{"for": 'a"b'}]
    assert parse_forwarded("") == []


def proxied(*headers: bytes, peer: str = "127.0.0.1", **kw: Any) -> dict[str, Any]:
    return http_scope(
        head_of(b"/", *headers),
        info(peername=(peer, 5000), proxy_headers=True, **kw),
        forwarded_allow_ips=kw.get("forwarded_allow_ips", ("127.0.0.1", "::1")),
    )


def test_x_forwarded_headers() -> None:
    scope = proxied(b"X-Forwarded-For: 1.2.3.4", b"X-Forwarded-Proto: https")
    assert scope["client"] == ("1.2.3.4", 0) and scope["scheme"] == "https"
    # The rightmost untrusted hop is the client; spoofed entries to its left are ignored.
    scope = proxied(
        b"X-Forwarded-For: 6.6.6.6, 1.2.3.4, 10.0.0.2",
        forwarded_allow_ips=("127.0.0.1", "10.0.0.0/8"),
    )
    assert scope["client"] == ("1.2.3.4", 0)
    # Untrusted peer: headers ignored.
    scope = proxied(b"X-Forwarded-For: 1.2.3.4", b"X-Forwarded-Proto: https", peer="8.8.8.8")
    assert scope["client"] == ("8.8.8.8", 5000) and scope["scheme"] == "http"
    # Disabled: ignored even from a trusted peer.
    scope = http_scope(head_of(b"/", b"X-Forwarded-For: 1.2.3.4"), info())
    assert scope["client"] == ("127.0.0.1", 5000)


def test_rfc7239_forwarded_wins() -> None:
    scope = proxied(
        b'Forwarded: for="[2001:db8::1]:4711";proto=https',
        b"X-Forwarded-For: 9.9.9.9",
    )
    assert scope["client"] == ("2001:db8::1", 4711)
    assert scope["scheme"] == "https"
    scope = proxied(b"Forwarded: for=1.2.3.4:80, for=127.0.0.1;proto=http")
    assert scope["client"] == ("1.2.3.4", 80)


def test_proxy_everyone_and_websocket_scheme() -> None:
    scope = proxied(b"X-Forwarded-Proto: https", peer="8.8.8.8", forwarded_allow_ips=("*",))
    assert scope["scheme"] == "https"
    head = head_of(
        b"/ws", b"Connection: Upgrade", b"Upgrade: websocket", b"X-Forwarded-Proto: https"
    )
    ws = websocket_scope(head, info(proxy_headers=True))
    assert ws["scheme"] == "wss"


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
    ("target", "path"),
    [(b"ws://h/chat?x", b"/chat"), (b"HTTP://H", b"/"), (b"example.com:443", b"example.com:443")],
)
def test_split_target_forms(target: bytes, path: bytes) -> None:
    assert split_target(target)[0] == path
