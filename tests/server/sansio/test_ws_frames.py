"""The connection after the handshake (server/sansio/ws_frames.py): ASGI message rules, frames
in and out, the closing handshake, limits, permessage-deflate data."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

from server.sansio import ws_frames as ws
from server.sansio.ws_errors import ASGIWebSocketError, ClientDisconnected
from server.sansio.ws_frames import (
    Closed,
    MessageReceived,
    PongReceived,
    State,
    WebSocketConnection,
)
from server.sansio.ws_handshake import Handshake
from tests.support.ws_sansio import (
    KEY,
    client,
    connecting,
    drain,
    frame_bytes,
    masked_frame,
    opened,
)


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
