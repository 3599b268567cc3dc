"""The opening handshake (server/sansio/ws_handshake.py): request checks, the 101,
permessage-deflate negotiation (RFC 6455 section 4, RFC 7692 section 5)."""

from __future__ import annotations

import base64

import pytest

from server.sansio.ws_frames import State, WebSocketConnection
from server.sansio.ws_handshake import (
    Handshake,
    HandshakeError,
    accept_token,
    negotiate_deflate,
    parse_handshake,
)
from tests.support.ws_sansio import KEY, connecting


def headers(**over: bytes | None) -> list[tuple[bytes, bytes]]:
    base: dict[str, bytes | None] = {
        "host": b"example.com",
        "upgrade": b"websocket",
        "connection": b"Upgrade",
        "sec_websocket_key": KEY,
        "sec_websocket_version": b"13",
    }
    base.update(over)
    return [(k.replace("_", "-").encode(), v) for k, v in base.items() if v is not None]


def test_accept_token_matches_rfc_example() -> None:
    # RFC 6455 §1.3 worked example.
    assert accept_token(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_handshake_collects_subprotocols_and_extensions() -> None:
    h = parse_handshake(
        [
            *headers(connection=b"keep-alive, Upgrade", upgrade=b"WebSocket"),
            (b"Sec-WebSocket-Protocol", b"chat, superchat"),
            (b"sec-websocket-protocol", b"v3"),
            (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits, x-foo"),
        ]
    )
    assert h.key == KEY
    assert h.subprotocols == ["chat", "superchat", "v3"]
    assert h.extension_offers == ["permessage-deflate; client_max_window_bits", "x-foo"]


@pytest.mark.parametrize(
    ("over", "status"),
    [
        ({"host": None}, 400),
        ({"upgrade": None}, 400),
        ({"upgrade": b"h2c"}, 400),
        ({"connection": b"keep-alive"}, 400),
        ({"sec_websocket_key": None}, 400),
        ({"sec_websocket_key": b"not base64!"}, 400),
        ({"sec_websocket_key": base64.b64encode(b"x" * 15)}, 400),
        ({"sec_websocket_version": None}, 400),
        ({"sec_websocket_version": b"8"}, 426),
    ],
)
def test_invalid_handshakes(over: dict[str, bytes | None], status: int) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_handshake(headers(**over))
    assert info.value.status == status
    response = info.value.response(b"date: d\r\nserver: s\r\n")
    assert response.startswith(b"HTTP/1.1 %d " % status)
    assert (b"sec-websocket-version: 13\r\n" in response) == (status == 426)
    assert b"connection: close\r\n" in response


def test_two_keys_rejected() -> None:
    with pytest.raises(HandshakeError):
        parse_handshake([*headers(), (b"sec-websocket-key", KEY)])


def test_accept_builds_101_with_subprotocol_and_headers() -> None:
    conn = connecting(["chat", "v2"])
    out = conn.app_message(
        {"type": "websocket.accept", "subprotocol": "v2", "headers": [(b"x-a", b"1")]},
        server=b"server: srv\r\n",
    )
    assert out == (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"sec-websocket-protocol: v2\r\nserver: srv\r\nx-a: 1\r\n\r\n"
    )
    assert conn.state is State.OPEN


def test_deflate_negotiation() -> None:
    result = negotiate_deflate(["x-other", "permessage-deflate; client_max_window_bits"])
    assert result is not None
    assert result[1] == "permessage-deflate; client_max_window_bits=15"
    assert negotiate_deflate(["permessage-deflate; client_max_window_bits=abc"]) is None
    assert negotiate_deflate(["permessage-deflate; server_max_window_bits=99"]) is None
    assert negotiate_deflate([]) is None


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        ("permessage-deflate; x-foo", None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; server_max_window_bits=010", None),
        ("permessage-deflate; client_max_window_bits=8", None),
        ('permessage-deflate; server_max_window_bits="12"', "server_max_window_bits=12"),
        ("permessage-deflate; Server_No_Context_Takeover", "server_no_context_takeover"),
    ],
)
def test_deflate_offer_validation(offer: str, expected: str | None) -> None:
    # RFC 7692 §5: unknown, repeated or invalid parameters → decline the offer.
    result = negotiate_deflate([offer])
    if expected is None:
        assert result is None
    else:
        assert result is not None and expected in result[1]


def test_accept_app_server_header_replaces_ours() -> None:
    conn = WebSocketConnection(Handshake(key=KEY), max_size=1 << 20)
    message = {"type": "websocket.accept", "headers": [(b"Server", b"app")]}
    out = conn.accept(message, server=b"server: us\r\n")
    assert out.count(b"erver: ") == 1 and b"Server: app\r\n" in out


def test_accept_app_server_header_keeps_the_extra_header_lines() -> None:
    # --header lines travel with the Server line (server.protocols.common.server_line).
    conn = WebSocketConnection(Handshake(key=KEY), max_size=1 << 20)
    message = {"type": "websocket.accept", "headers": [(b"Server", b"app")]}
    out = conn.accept(message, server=b"server: us\r\nx-frame-options: DENY\r\nx-b: 1\r\n")
    assert out.count(b"erver: ") == 1 and b"Server: app\r\n" in out
    assert b"\r\nx-frame-options: DENY\r\nx-b: 1\r\n" in out
    assert out.endswith(b"\r\n\r\n") and out.count(b"\r\n\r\n") == 1
