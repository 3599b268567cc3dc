"""HTTP responses instead of the 101 (server/sansio/ws_denial.py): refusals and the ASGI
WebSocket Denial Response extension, serialised like any HTTP response."""

from __future__ import annotations

from typing import Any

import pytest

from server.sansio.ws_errors import ASGIWebSocketError, ClientDisconnected
from server.sansio.ws_frames import State, WebSocketConnection
from server.sansio.ws_handshake import Handshake
from tests.support.ws_sansio import KEY, connecting, frame_bytes, state_of


def test_close_before_accept_is_403() -> None:
    conn = connecting()
    out = frame_bytes(conn.app_message({"type": "websocket.close"}, date=b"date: D\r\n"))
    assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"date: D\r\n" in out
    assert conn.state is State.CLOSED
    with pytest.raises(ClientDisconnected):
        conn.app_message({"type": "websocket.send", "text": "x"})
    with pytest.raises(ClientDisconnected):
        conn.app_message({"type": "websocket.accept"})


def test_denial_response_with_content_length() -> None:
    conn = connecting()
    assert (
        conn.app_message(
            {"type": "websocket.http.response.start", "status": 401, "headers": [(b"x-y", b"z")]}
        )
        == b""
    )
    assert state_of(conn) is State.DENYING
    with pytest.raises(ASGIWebSocketError):
        conn.app_message({"type": "websocket.accept"})
    out = conn.app_message({"type": "websocket.http.response.body", "body": b"no"})
    assert out == (
        b"HTTP/1.1 401 Unauthorized\r\nx-y: z\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
    )
    assert conn.state is State.CLOSED


def test_denial_response_streamed_is_chunked() -> None:
    conn = connecting()
    conn.app_message({"type": "websocket.http.response.start", "status": 403})
    first = conn.app_message(
        {"type": "websocket.http.response.body", "body": b"ab", "more_body": True}
    )
    assert first == (
        b"HTTP/1.1 403 Forbidden\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        b"2\r\nab\r\n"
    )
    assert conn.app_message({"type": "websocket.http.response.body", "body": b"c"}) == (
        b"1\r\nc\r\n0\r\n\r\n"
    )
    assert conn.state is State.CLOSED


@pytest.mark.parametrize("status", [101, 99, "200", None])
def test_denial_bad_status(status: Any) -> None:
    with pytest.raises(ASGIWebSocketError):
        connecting().app_message({"type": "websocket.http.response.start", "status": status})


def test_abort_denial_gives_500_only_if_nothing_written() -> None:
    conn = connecting()
    conn.app_message({"type": "websocket.http.response.start", "status": 403})
    assert conn.abort_denial().startswith(b"HTTP/1.1 500 ")
    conn = connecting()
    conn.app_message({"type": "websocket.http.response.start", "status": 403})
    conn.app_message({"type": "websocket.http.response.body", "body": b"x", "more_body": True})
    assert conn.abort_denial() == b""
    assert conn.state is State.CLOSED


def test_denial_drops_server_owned_headers() -> None:
    conn = WebSocketConnection(Handshake(key=KEY), max_size=1 << 20)
    conn.app_message(
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [
                (b"connection", b"keep-alive"),
                (b"transfer-encoding", b"chunked"),
                (b"server", b"app"),
            ],
        },
        server=b"server: ours\r\n",
        date=b"date: today\r\n",
    )
    out = frame_bytes(conn.app_message({"type": "websocket.http.response.body", "body": b"no"}))
    head, _, body = out.partition(b"\r\n\r\n")
    # The HTTP response serialiser's order: the app's headers, then the server's own lines.
    assert head.split(b"\r\n")[1:] == [
        b"server: app",
        b"date: today",
        b"content-length: 2",
        b"connection: close",
    ]
    assert body == b"no"


@pytest.mark.parametrize("status", [100, 101, 199, 1000, "403"])
def test_denial_status_must_be_final(status: Any) -> None:
    conn = WebSocketConnection(Handshake(key=KEY), max_size=1 << 20)
    with pytest.raises(ASGIWebSocketError, match="status"):
        conn.app_message({"type": "websocket.http.response.start", "status": status})
    assert conn.state is State.CONNECTING


@pytest.mark.parametrize(
    "lengths", [[b"bogus"], [b"-1"], [b"3", b"3"], [b"3", b"4"]], ids=["text", "neg", "2x", "diff"]
)
def test_denial_bad_content_length_is_an_app_error(lengths: list[bytes]) -> None:
    conn = WebSocketConnection(Handshake(key=KEY), max_size=1 << 20)
    headers = [(b"content-length", v) for v in lengths]
    with pytest.raises(ASGIWebSocketError, match="content-length"):
        conn.app_message(
            {"type": "websocket.http.response.start", "status": 403, "headers": headers}
        )
    assert conn.state is State.CONNECTING
