"""Sans-I/O WebSocket core: handshake rules, ASGI state machine, frames in and out."""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

from server.sansio import ws_frames as ws
from server.sansio.ws_errors import ASGIWebSocketError, ClientDisconnected
from server.sansio.ws_frames import (
    Closed,
    MessageReceived,
    PongReceived,
    State,
    WebSocketConnection,
    encode_data_frame,
)
from server.sansio.ws_handshake import (
    Handshake,
    HandshakeError,
    accept_token,
    negotiate_deflate,
    parse_handshake,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


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


def opened(max_size: int = 1 << 20, **kwargs: Any) -> WebSocketConnection:
    conn = WebSocketConnection(Handshake(key=KEY), max_size=max_size, **kwargs)
    conn.accept({"type": "websocket.accept"})
    return conn


def client(deflate: bool = False) -> WsprotoConnection:
    extensions: list[Extension] = []
    if deflate:
        ext = PerMessageDeflate()
        ext.finalize("permessage-deflate")
        extensions.append(ext)
    return WsprotoConnection(ConnectionType.CLIENT, extensions=extensions)


def state_of(conn: WebSocketConnection) -> State:
    return conn.state  # a call, so mypy does not keep a narrowed state across app_message


def drain(conn: WebSocketConnection) -> list[ws.Event]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def masked_frame(first: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def frame_bytes(out: ws.Frame) -> bytes:
    return out if isinstance(out, bytes) else b"".join(out)


# ------------------------------------------------------------------------------ handshake


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


# ----------------------------------------------------------------------- ASGI state machine


def connecting(subprotocols: list[str] | None = None) -> WebSocketConnection:
    return WebSocketConnection(Handshake(key=KEY, subprotocols=subprotocols or []), max_size=100)


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


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.accept", "subprotocol": "nope"},
        {"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"chat")]},
        {"type": "websocket.accept", "headers": [(b"bad header", b"x")]},
        {"type": "websocket.accept", "headers": [(b"x", b"a\r\nb")]},
        {"type": "websocket.accept", "headers": [("x", "y")]},
        {"type": "websocket.send", "text": "early"},
        {"type": "websocket.http.response.body", "body": b""},
        {"type": "websocket.bogus"},
        {"no": "type"},
    ],
)
def test_illegal_messages_before_accept(message: dict[str, Any]) -> None:
    conn = connecting(["chat"])
    with pytest.raises(ASGIWebSocketError):
        conn.app_message(message)
    assert conn.state is State.CONNECTING


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


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.send"},
        {"type": "websocket.send", "text": "a", "bytes": b"b"},
        {"type": "websocket.send", "text": b"bytes-as-text"},
        {"type": "websocket.send", "bytes": "text-as-bytes"},
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": 1006},
        {"type": "websocket.close", "code": 999},
        {"type": "websocket.close", "code": "1000"},
        {"type": "websocket.close", "reason": 5},
        {"type": "websocket.http.response.start", "status": 403},
    ],
)
def test_illegal_messages_when_open(message: dict[str, Any]) -> None:
    conn = opened()
    with pytest.raises(ASGIWebSocketError):
        conn.app_message(message)
    assert conn.state is State.OPEN


def test_send_and_close_when_open() -> None:
    conn = opened()
    assert frame_bytes(conn.app_message({"type": "websocket.send", "text": "hi"})) == b"\x81\x02hi"
    assert frame_bytes(conn.app_message({"type": "websocket.send", "bytes": b"\x00"})) == (
        b"\x82\x01\x00"
    )
    out = conn.app_message({"type": "websocket.close", "code": 4000, "reason": "bye"})
    assert out == b"\x88\x05" + struct.pack("!H", 4000) + b"bye"
    assert conn.state is State.CLOSING
    # Closing again is harmless; sending data is a disconnected-client error (ASGI 2.4).
    assert conn.app_message({"type": "websocket.close"}) == b""
    with pytest.raises(ClientDisconnected):
        conn.app_message({"type": "websocket.send", "text": "late"})
    assert isinstance(ClientDisconnected(), OSError)


def test_close_reason_longer_than_a_control_frame_is_an_app_error() -> None:
    # RFC 6455 §5.5: ≤125-byte payload = 2-byte code + ≤123 bytes of reason.
    conn = opened()
    with pytest.raises(ASGIWebSocketError, match="123"):
        conn.app_message({"type": "websocket.close", "reason": "é" * 62})  # 124 bytes
    assert conn.state is ws.State.OPEN  # nothing sent: the app can still close properly
    out = frame_bytes(conn.app_message({"type": "websocket.close", "reason": "é" * 61 + "x"}))
    assert out[1] == 125 and out[4:].decode("utf-8") == "é" * 61 + "x"


def test_server_generated_close_reason_truncated_to_fit_control_frame() -> None:
    conn = opened()
    out = frame_bytes(conn.close(1001, "é" * 100))
    assert out[1] <= 125
    out[4:].decode("utf-8")  # still valid UTF-8 after truncation


# ----------------------------------------------------------------------------- frames out


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 70000])
def test_encode_lengths(n: int) -> None:
    payload = os.urandom(n)
    frame = frame_bytes(encode_data_frame(payload))
    c = client()
    c.receive_data(frame)
    (event,) = list(c.events())
    assert isinstance(event, BytesMessage)
    assert event.data == payload and event.message_finished
    # Large payloads are not copied into the frame: (header, payload) for writelines.
    assert isinstance(encode_data_frame(payload), tuple) == (n > ws.JOIN_LIMIT)


def test_fanout_cache_identity_and_type() -> None:
    text = "broadcast " * 10
    first = encode_data_frame(text)
    assert encode_data_frame(text) is first  # same object: encoded once
    assert encode_data_frame("".join(["broadcast "] * 10)) is first  # equal value
    as_bytes = frame_bytes(encode_data_frame(text.encode()))
    assert as_bytes[0] == 0x82  # bytes with the same content are a binary frame, not the cache
    mutable = bytearray(b"abc")
    f1 = frame_bytes(encode_data_frame(mutable))
    mutable[0] = ord("x")
    assert frame_bytes(encode_data_frame(mutable)) == b"\x82\x03xbc" != f1


# ------------------------------------------------------------------------------ frames in


def client_stream() -> tuple[bytes, list[Any]]:
    """A client byte stream exercising text, binary, fragments, ping, and its expected events."""
    c = client()
    data = b"".join(
        [
            c.send(TextMessage(data="hello")),
            c.send(BytesMessage(data=b"\x00\xff" * 100)),
            c.send(TextMessage(data="frag", message_finished=False)),
            c.send(Ping(payload=b"p")),  # control frames may interleave with fragments (§5.4)
            c.send(TextMessage(data="mént", message_finished=True)),
            c.send(BytesMessage(data=b"a" * 70000)),
            c.send(Pong(payload=b"x")),
            c.send(CloseConnection(code=4001, reason="done")),
        ]
    )
    expected = [
        MessageReceived("hello"),
        MessageReceived(b"\x00\xff" * 100),
        MessageReceived("fragmént"),
        MessageReceived(b"a" * 70000),
        PongReceived(b"x"),
        Closed(4001, "done"),
    ]
    return data, expected


def feed(chunks: list[bytes]) -> tuple[list[Any], bytes, WebSocketConnection]:
    conn = opened(max_size=1 << 20)
    events: list[Any] = []
    out = b""
    for chunk in chunks:
        conn.receive_data(chunk)
        events += drain(conn)
        out += conn.data_to_send()
    return events, out, conn


def test_stream_whole() -> None:
    data, expected = client_stream()
    events, out, conn = feed([data])
    assert events == expected
    assert conn.state is State.CLOSED
    c = client()
    c.receive_data(out)
    replies = list(c.events())
    assert replies[0] == Pong(payload=b"p")  # §5.5.3 pong echoes the ping payload
    assert isinstance(replies[1], CloseConnection) and replies[1].code == 4001  # §5.5.1 echo


def test_stream_byte_by_byte_gives_same_events() -> None:
    data, expected = client_stream()
    events, _, _ = feed([data[i : i + 1] for i in range(len(data))])
    assert events == expected


def test_trailing_garbage_after_close_is_ignored() -> None:
    data, expected = client_stream()
    events, _, _ = feed([data + b"\xff" * 50])
    assert events == expected


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=80000), max_size=8))
def test_any_split_gives_same_events(cuts: list[int]) -> None:
    data, expected = client_stream()
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    events, _, _ = feed(chunks)
    assert events == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_random_bytes_only_documented_outcomes(data: bytes, step: int) -> None:
    conn = opened(max_size=64)
    for i in range(0, len(data), step):
        conn.receive_data(data[i : i + step])
        for event in drain(conn):
            assert isinstance(event, MessageReceived | PongReceived | Closed)
            if isinstance(event, Closed):
                assert event.code in {1000, 1001, 1002, 1003, 1005, 1007, 1009} or (
                    1007 <= event.code <= 4999
                )
        conn.data_to_send()
    assert conn.state in (State.OPEN, State.CLOSED)


def test_unmasked_client_frame_is_protocol_error() -> None:
    conn = opened()
    conn.receive_data(b"\x81\x02hi")
    (event,) = drain(conn)
    assert event == Closed(1002, "", failed=True)
    out = conn.data_to_send()
    assert out[:4] == b"\x88\x02\x03\xea"  # Close 1002
    # After failing, input is ignored and nothing else comes out.
    conn.receive_data(masked_frame(0x81, b"ignored"))
    assert drain(conn) == [] and conn.data_to_send() == b""


def test_invalid_utf8_is_1007_even_across_fragments() -> None:
    conn = opened()
    # "é" is C3 A9; split it across two fragments, then corrupt the continuation.
    conn.receive_data(masked_frame(0x01, b"ab\xc3"))
    assert drain(conn) == []
    conn.receive_data(masked_frame(0x80, b"\x28"))
    (event,) = drain(conn)
    assert event.code == 1007 and event.failed  # type: ignore[union-attr]
    assert conn.data_to_send()[2:4] == struct.pack("!H", 1007)


def test_valid_utf8_split_across_fragments() -> None:
    conn = opened()
    conn.receive_data(masked_frame(0x01, b"ab\xc3") + masked_frame(0x80, b"\xa9"))
    assert drain(conn) == [MessageReceived("abé")]


@pytest.mark.parametrize("fragmented", [False, True])
def test_message_too_big_is_1009(fragmented: bool) -> None:
    conn = opened(max_size=10)
    if fragmented:
        conn.receive_data(masked_frame(0x02, b"x" * 6) + masked_frame(0x80, b"y" * 6))
    else:
        conn.receive_data(masked_frame(0x82, b"x" * 11))
    (event,) = drain(conn)
    assert event == Closed(1009, "message too big", failed=True)
    assert conn.data_to_send()[2:4] == struct.pack("!H", 1009)


def test_max_size_counts_utf8_bytes_not_characters() -> None:
    conn = opened(max_size=10)
    conn.receive_data(masked_frame(0x81, "éééééé".encode()))  # 6 chars, 12 bytes
    (event,) = drain(conn)
    assert isinstance(event, Closed) and event.code == 1009
    conn = opened(max_size=10)
    conn.receive_data(masked_frame(0x81, b"x" * 10))  # exactly the limit is fine
    assert drain(conn) == [MessageReceived("x" * 10)]


def test_close_without_code_is_1005_and_echoed_empty() -> None:
    conn = opened()
    conn.receive_data(masked_frame(0x88, b""))
    assert drain(conn) == [Closed(1005, "")]
    assert conn.data_to_send() == b"\x88\x00"


def test_server_initiated_close_then_peer_reply() -> None:
    conn = opened()
    conn.app_message({"type": "websocket.close", "code": 1000})
    # Data after our Close is discarded; the peer's Close completes the handshake.
    conn.receive_data(masked_frame(0x81, b"late") + masked_frame(0x88, struct.pack("!H", 1000)))
    assert drain(conn) == [Closed(1000, "")]
    assert conn.data_to_send() == b""  # no second Close from us
    assert conn.state is State.CLOSED


def test_closing_handshake_states_follow_rfc_6455_section_7() -> None:
    """The frame layer is wsproto's FrameProtocol; the closing-handshake state is ours."""
    # Peer first: we answer once, then nothing more goes out and input is ignored.
    conn = opened()
    conn.receive_data(masked_frame(0x88, struct.pack("!H", 4000) + b"bye"))
    assert drain(conn) == [Closed(4000, "bye")]
    assert conn.data_to_send() == b"\x88\x02" + struct.pack("!H", 4000)
    assert conn.close(1000) == b"" and conn.ping(b"p") == b""
    conn.receive_data(masked_frame(0x81, b"after"))
    assert drain(conn) == [] and conn.data_to_send() == b""
    # Us first: pings from the peer are no longer answered while we wait for its Close.
    conn = opened()
    assert conn.close(1001, "going") == b"\x88\x07" + struct.pack("!H", 1001) + b"going"
    conn.receive_data(masked_frame(0x89, b"p"))
    assert drain(conn) == [] and conn.data_to_send() == b""
    conn.receive_data(masked_frame(0x88, struct.pack("!H", 1001)))
    assert drain(conn) == [Closed(1001, "")]
    assert conn.data_to_send() == b""
    # A protocol error (reserved opcode) fails with the code wsproto chose, once.
    conn = opened()
    conn.receive_data(masked_frame(0x83, b"x") + masked_frame(0x81, b"never"))
    (event,) = drain(conn)
    assert isinstance(event, Closed) and event.code == 1002 and event.failed
    assert conn.data_to_send()[:4] == b"\x88\x02\x03\xea"
    assert drain(conn) == []


def test_early_data_is_parsed_after_accept() -> None:
    conn = connecting()
    conn.receive_data(masked_frame(0x81, b"early"))
    assert conn.next_event() is None and conn.buffered_early > 0
    conn.app_message({"type": "websocket.accept"})
    assert drain(conn) == [MessageReceived("early")]


def test_connection_lost_is_1006_once() -> None:
    conn = opened()
    assert conn.connection_lost() == Closed(1006)
    assert conn.connection_lost() is None


def test_ping_frame_from_server() -> None:
    conn = opened()
    assert conn.ping(b"k") == b"\x89\x01k"
    conn.app_message({"type": "websocket.close"})
    assert conn.ping() == b""


# ------------------------------------------------------------------------ permessage-deflate


def test_deflate_negotiation() -> None:
    result = negotiate_deflate(["x-other", "permessage-deflate; client_max_window_bits"])
    assert result is not None
    assert result[1] == "permessage-deflate; client_max_window_bits=15"
    assert negotiate_deflate(["permessage-deflate; client_max_window_bits=abc"]) is None
    assert negotiate_deflate(["permessage-deflate; server_max_window_bits=99"]) is None
    assert negotiate_deflate([]) is None


def test_deflate_round_trip() -> None:
    handshake = Handshake(key=KEY, extension_offers=["permessage-deflate"])
    conn = WebSocketConnection(handshake, max_size=1 << 20, per_message_deflate=True)
    response = frame_bytes(conn.app_message({"type": "websocket.accept"}))
    assert b"sec-websocket-extensions: permessage-deflate\r\n" in response
    c = client(deflate=True)
    text = "compress me " * 200
    wire = c.send(TextMessage(data=text))
    assert len(wire) < len(text) // 4
    conn.receive_data(wire)
    assert drain(conn) == [MessageReceived(text)]
    out = frame_bytes(conn.app_message({"type": "websocket.send", "text": text}))
    assert out[0] & 0x40  # RSV1: compressed
    c.receive_data(out)
    (event,) = list(c.events())
    assert isinstance(event, TextMessage) and event.data == text


def test_deflate_not_used_unless_enabled_and_offered() -> None:
    handshake = Handshake(key=KEY, extension_offers=["permessage-deflate"])
    conn = WebSocketConnection(handshake, max_size=100, per_message_deflate=False)
    assert b"sec-websocket-extensions" not in frame_bytes(
        conn.app_message({"type": "websocket.accept"})
    )
    conn = WebSocketConnection(Handshake(key=KEY), max_size=100, per_message_deflate=True)
    assert b"sec-websocket-extensions" not in frame_bytes(
        conn.app_message({"type": "websocket.accept"})
    )


def test_deflate_bomb_stops_at_max_size() -> None:
    handshake = Handshake(key=KEY, extension_offers=["permessage-deflate"])
    conn = WebSocketConnection(handshake, max_size=100_000, per_message_deflate=True)
    conn.app_message({"type": "websocket.accept"})
    c = client(deflate=True)
    wire = c.send(BytesMessage(data=b"\x00" * 5_000_000))  # ~5 KB compressed
    assert len(wire) < 10_000
    conn.receive_data(wire)
    (event,) = drain(conn)
    assert isinstance(event, Closed) and event.code == 1009


# ------------------------------------------------------------------------- review hardening


def test_held_pongs_answer_only_the_latest_ping() -> None:
    # RFC 6455 §5.5.3: while the peer is not reading, only the most recent Ping is answered.
    conn = opened()
    c = client()
    conn.hold_pongs = True
    for i in range(1000):
        conn.receive_data(bytes(c.send(Ping(payload=b"%d" % i))))
    assert conn.next_event() is None
    assert conn.data_to_send() == b""
    conn.hold_pongs = False
    c.receive_data(conn.owed_pong())
    assert [e.payload for e in c.events() if isinstance(e, Pong)] == [b"999"]
    assert conn.owed_pong() == b""


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


@pytest.mark.parametrize("deflate", [False, True])
def test_text_with_lone_surrogate_is_a_clear_app_error(deflate: bool) -> None:
    conn = WebSocketConnection(
        Handshake(key=KEY, extension_offers=["permessage-deflate"] if deflate else []),
        max_size=1 << 20,
        per_message_deflate=deflate,
    )
    conn.accept({"type": "websocket.accept"})
    with pytest.raises(ASGIWebSocketError, match="UTF-8"):
        conn.app_message({"type": "websocket.send", "text": "a\ud800b"})
    assert frame_bytes(conn.app_message({"type": "websocket.send", "text": "ok"}))  # usable


@pytest.mark.parametrize("status", [100, 101, 199, 1000, "403"])
def test_denial_status_must_be_final(status: Any) -> None:
    conn = WebSocketConnection(Handshake(key=KEY), max_size=1 << 20)
    with pytest.raises(ASGIWebSocketError, match="status"):
        conn.app_message({"type": "websocket.http.response.start", "status": status})
    assert conn.state is State.CONNECTING


def test_accept_app_server_header_replaces_ours() -> None:
    conn = WebSocketConnection(Handshake(key=KEY), max_size=1 << 20)
    message = {"type": "websocket.accept", "headers": [(b"Server", b"app")]}
    out = conn.accept(message, server=b"server: us\r\n")
    assert out.count(b"erver: ") == 1 and b"Server: app\r\n" in out


_frame_strategy = st.tuples(
    st.integers(min_value=0, max_value=255),  # FIN, RSV1-3 and opcode: anything
    st.binary(max_size=200),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_frame_strategy, max_size=12), st.booleans(), st.integers(1, 64))
def test_random_masked_frames_only_documented_outcomes(
    frames: list[tuple[int, bytes]], deflate: bool, step: int
) -> None:
    """Well-masked frames with arbitrary header bits and payloads (also through the deflate
    decoder): parsing ends in messages, pongs or a Close with a legal code, never a crash."""
    conn = WebSocketConnection(
        Handshake(key=KEY, extension_offers=["permessage-deflate"] if deflate else []),
        max_size=1000,
        per_message_deflate=deflate,
    )
    conn.accept({"type": "websocket.accept"})
    data = b"".join(masked_frame(first, payload) for first, payload in frames)
    closed = 0
    for i in range(0, len(data), step):
        conn.receive_data(data[i : i + step])
        for event in drain(conn):
            assert isinstance(event, MessageReceived | PongReceived | Closed)
            if isinstance(event, Closed):
                closed += 1
                assert event.code in {1000, 1001, 1002, 1003, 1005, 1007, 1009} or (
                    1008 <= event.code <= 1014 or 3000 <= event.code <= 4999
                ), event
        out = conn.data_to_send()
        if out:
            reader = client()
            reader.receive_data(out)  # what we write is always well-formed for a client
            assert all(
                not isinstance(e, CloseConnection) or e.code >= 1000 for e in reader.events()
            )
    assert closed <= 1
    assert conn.state in (State.OPEN, State.CLOSED)


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


# -------------------------------------------------------------- declared frame length (1009)


def masked_header(first: int, length: int) -> bytes:
    if length < 126:
        head = bytes((first, 0x80 | length))
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + b"\x01\x02\x03\x04"


@pytest.mark.parametrize("step", [1, 3, 10_000])
@pytest.mark.parametrize("deflate", [False, True])
def test_frame_over_max_size_fails_on_its_header(step: int, deflate: bool) -> None:
    """RFC 6455 §7.4.1: 1009 as soon as the header is read; the frames before it are still
    delivered and nothing of its payload is held."""
    conn = WebSocketConnection(
        Handshake(key=KEY, extension_offers=["permessage-deflate"] if deflate else []),
        max_size=1000,
        per_message_deflate=deflate,
    )
    conn.accept({"type": "websocket.accept"})
    ok = masked_frame(0x81, b"before") if not deflate else b""
    data = ok + masked_frame(0x89, b"p") + masked_header(0x82, 100 * 1024 * 1024) + b"x" * 5000
    events: list[Any] = []
    for i in range(0, len(data), step):
        conn.receive_data(data[i : i + step])
        assert conn.buffered <= 100, conn.buffered
        events.extend(drain(conn))
    if not deflate:
        assert events[0] == MessageReceived("before")
    assert events[-1] == Closed(1009, "message too big", failed=True)
    reader = client()
    reader.receive_data(conn.data_to_send())
    assert [type(e).__name__ for e in reader.events()] == ["Pong", "CloseConnection"]


def test_frame_of_exactly_max_size_passes_and_lengths_are_followed() -> None:
    conn = opened(max_size=70_000)
    # A payload full of bytes that read like frame headers declaring huge lengths.
    fake = b"\x82\xff" + b"\xff" * 8
    payloads = [fake * 7000, fake, b"", b"y" * 126, b"z" * 65536]
    data = b"".join(masked_frame(0x82, p) for p in payloads)
    got: list[Any] = []
    for i in range(0, len(data), 997):
        conn.receive_data(data[i : i + 997])
        got.extend(drain(conn))
    assert got == [MessageReceived(p) for p in payloads]


def test_compressed_frame_may_exceed_max_size_by_deflate_overhead() -> None:
    """Incompressible data grows a little when deflated (RFC 1951 §3.2.4 stored blocks): a
    message of exactly max_size must not be refused on its compressed frame's length."""
    max_size = 200_000
    conn = WebSocketConnection(
        Handshake(key=KEY, extension_offers=["permessage-deflate"]),
        max_size=max_size,
        per_message_deflate=True,
    )
    accept = conn.accept({"type": "websocket.accept"})
    ext = accept.split(b"sec-websocket-extensions: ")[1].split(b"\r\n")[0].decode()
    payload = os.urandom(max_size)
    deflate = PerMessageDeflate()
    deflate.finalize(ext)
    sender = WsprotoConnection(ConnectionType.CLIENT, extensions=[deflate])
    data = sender.send(BytesMessage(data=payload))
    assert len(data) > max_size + 14  # the compressed frame is longer than the message
    conn.receive_data(data)
    assert drain(conn) == [MessageReceived(payload)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=30), st.integers(1, 50))
def test_any_split_of_the_stream_gives_the_same_events(sizes: list[int], step: int) -> None:
    """The header check keeps its place in the stream across every read boundary."""
    conn = opened(max_size=250)
    data = b"".join(masked_frame(0x82, bytes([n % 256]) * n) for n in sizes)
    events: list[Any] = []
    for i in range(0, len(data), step):
        conn.receive_data(data[i : i + step])
        events.extend(drain(conn))
    expected: list[Any] = []
    for n in sizes:
        if n > 250:
            expected.append(Closed(1009, "message too big", failed=True))
            break
        expected.append(MessageReceived(bytes([n % 256]) * n))
    assert events == expected
