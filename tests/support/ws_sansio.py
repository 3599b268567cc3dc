"""Sans-I/O WebSocket test helpers: a connection in each state, a wsproto client, frame bytes."""

from __future__ import annotations

import struct
from typing import Any

from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.extensions import Extension, PerMessageDeflate

from server.sansio.ws_frames import Event, State, WebSocketConnection
from server.sansio.ws_handshake import Handshake
from server.sansio.ws_wire import Frame

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


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


def drain(conn: WebSocketConnection) -> list[Event]:
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


def frame_bytes(out: Frame) -> bytes:
    return out if isinstance(out, bytes) else b"".join(out)


def connecting(subprotocols: list[str] | None = None) -> WebSocketConnection:
    return WebSocketConnection(Handshake(key=KEY, subprotocols=subprotocols or []), max_size=100)
