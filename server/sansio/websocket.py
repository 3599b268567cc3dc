"""WebSocket protocol state without I/O: opening handshake, ASGI message rules, frames.

Bytes and ASGI messages go in; bytes to write and events for the application come out.  No
asyncio, no sockets and no clock here (the ``Date`` header value is passed in), so every rule can
be tested by feeding bytes whole, one at a time or in random splits.

Pieces, in the order a connection meets them:

* :func:`parse_handshake` validates the upgrade request headers (RFC 6455 §4.2.1) that the HTTP
  protocol already parsed; :class:`HandshakeError` carries the 400/426 answer.
* :class:`WebSocketConnection` enforces which ASGI message is legal in which state::

      CONNECTING --accept--> OPEN --close (app)--> CLOSING --peer close--> CLOSED
          |  \\--close--> CLOSED (HTTP 403)         \\--peer close / failure--> CLOSED
          \\--http.response.start--> DENYING --last body--> CLOSED

  and drives ``wsproto`` for incoming frames (we never let wsproto re-parse the HTTP request).
  We use wsproto's frame layer (``FrameProtocol``: framing, unmasking, UTF-8, Close payload
  and extension checks) without its ``Connection`` event wrapper, and keep the four connection
  states that wrapper would track ourselves (``_wire_state``): the wrapper re-dispatched every
  frame into an event object, ~1.3 us of the ~7 us wsproto spent per 64-byte message
  (benchmarks/micro/ws_echo.py, see RESULTS.md).
* Outgoing data frames without compression are encoded here directly: server frames are never
  masked (RFC 6455 §5.1), so a frame is a pure function of opcode and payload, which is what makes
  the fan-out cache in :func:`encode_data_frame` safe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from typing import Any, Final

from wsproto.connection import ConnectionState as WsprotoState
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed
from wsproto.frame_protocol import Frame as WireFrame

# RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing.
_ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes (RFC 6455 §5.2).
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2

# Close codes used by the server itself (RFC 6455 §7.4.1).
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_NO_STATUS: Final = 1005
CLOSE_ABNORMAL: Final = 1006
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011

# Codes an endpoint may put in a Close frame (RFC 6455 §7.4.1/§7.4.2 and the IANA registry):
# 1004, 1005, 1006 and 1015 are reserved or local-only; 1016-2999 are unassigned protocol codes.
_SENDABLE_CODES: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})

# Payloads up to this size are joined with their frame header into one ``bytes`` (one copy is
# cheaper than a vectored write for small buffers); bigger ones go out as (header, payload) so
# the transport's ``writelines`` can send them without copying the payload.
JOIN_LIMIT: Final = 64 * 1024

# With permessage-deflate, input is fed to the decompressor in slices of this size so that a
# small compressed frame cannot inflate into an unbounded buffer before the size check runs
# (deflate expands at most ~1032:1, so one slice yields at most ~4 MiB).
_DEFLATE_FEED_SLICE: Final = 4 * 1024

# A message arriving in more pieces than this (fragments or socket reads) has each run of this
# many pieces joined into one, bounding per-piece object overhead to ~1/4 byte per payload byte.
_JOIN_PIECES: Final = 256


def _phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""  # an empty reason-phrase is allowed (RFC 9112 §4)


# Header names the server writes itself on a 101; the application may not supply them.
_RESERVED_ACCEPT_HEADERS: Final = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
    }
)

# Header names the server controls on a denial response (websocket.http.response.start).
_DENIAL_SERVER_HEADERS: Final = frozenset({b"connection", b"transfer-encoding"})

_TOKEN_CHARS: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_FORBIDDEN_VALUE_BYTES: Final = frozenset(b"\r\n\x00")


class HandshakeError(Exception):
    """The upgrade request is not a valid WebSocket opening handshake (RFC 6455 §4.2.1)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self, *, server: bytes | None = None, date: bytes | None = None) -> bytes:
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"text/plain; charset=utf-8")]
        if self.status == 426:
            # RFC 6455 §4.4: tell the client which version we speak.
            headers.append((b"sec-websocket-version", b"13"))
        return http_response(
            self.status, headers, self.detail.encode() + b"\n", server=server, date=date
        )


class ASGIWebSocketError(RuntimeError):
    """The application sent a message that is invalid or illegal in the current state."""


class ClientDisconnected(OSError):
    """``send`` on a connection that is already closed (ASGI WebSocket spec 2.4)."""


class State(Enum):
    CONNECTING = "connecting"  # handshake received, application has not answered yet
    DENYING = "denying"  # websocket.http.response.start sent: an HTTP response is in progress
    OPEN = "open"  # 101 sent, frames flow both ways
    CLOSING = "closing"  # we sent a Close frame and wait for the peer's (RFC 6455 §7.1.2)
    CLOSED = "closed"  # nothing more goes out; the transport should be closed


@dataclass(slots=True)
class Handshake:
    """What the application and the frame layer need from a valid upgrade request."""

    key: bytes
    subprotocols: list[str] = field(default_factory=list)
    extension_offers: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------- handshake


def _comma_split(value: bytes) -> list[bytes]:
    return [part.strip() for part in value.split(b",") if part.strip()]


def parse_handshake(headers: Iterable[tuple[bytes, bytes]]) -> Handshake:
    """Validate the client's opening handshake headers (RFC 6455 §4.2.1).

    The request line (GET, HTTP/1.1) was checked by the HTTP protocol before the hand-off.
    Raises :class:`HandshakeError` with 426 for an unsupported version and 400 otherwise.
    """
    host = False
    upgrade: list[bytes] = []
    connection: list[bytes] = []
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[str] = []
    extensions: list[str] = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name == b"host":
            host = True
        elif name == b"upgrade":
            upgrade.extend(t.lower() for t in _comma_split(value))
        elif name == b"connection":
            connection.extend(t.lower() for t in _comma_split(value))
        elif name == b"sec-websocket-key":
            keys.append(value.strip())
        elif name == b"sec-websocket-version":
            versions.append(value.strip())
        elif name == b"sec-websocket-protocol":
            protocols.extend(t.decode("latin-1") for t in _comma_split(value))
        elif name == b"sec-websocket-extensions":
            extensions.extend(t.decode("latin-1") for t in _comma_split(value))
    # §4.2.1 items 2-4: Host, an Upgrade header with "websocket", a Connection header with
    # the "Upgrade" token (both compared case-insensitively).
    if not host:
        raise HandshakeError(400, "missing Host header")
    if b"websocket" not in upgrade:
        raise HandshakeError(400, "missing 'Upgrade: websocket' header")
    if b"upgrade" not in connection:
        raise HandshakeError(400, "missing 'Connection: Upgrade' header")
    # §4.2.1 item 6 / §4.4: exactly version 13, else 426 with the version we support.
    if not versions:
        raise HandshakeError(400, "missing Sec-WebSocket-Version header")
    if versions != [b"13"]:
        raise HandshakeError(426, "unsupported Sec-WebSocket-Version (only 13 is supported)")
    # §4.2.1 item 5: a base64 value that decodes to exactly 16 bytes.
    if len(keys) != 1:
        raise HandshakeError(400, "expected exactly one Sec-WebSocket-Key header")
    try:
        decoded = base64.b64decode(keys[0], validate=True)
    except binascii.Error:
        decoded = b""
    if len(decoded) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes, base64-encoded")
    return Handshake(key=keys[0], subprotocols=protocols, extension_offers=extensions)


def accept_token(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2 item 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())


# RFC 7692 §7.1: the parameters a client may put in a permessage-deflate offer, and whether
# each takes a value ("yes"), must not ("no") or may ("maybe": client_max_window_bits alone
# means "I can handle any value you answer").
_DEFLATE_OFFER_PARAMS: Final = {
    "server_no_context_takeover": "no",
    "client_no_context_takeover": "no",
    "server_max_window_bits": "yes",
    "client_max_window_bits": "maybe",
}


def _normalize_deflate_offer(offer: str) -> str | None:
    """The offer rewritten for wsproto, or None if RFC 7692 §5 says to decline it.

    §5: decline an offer with an unknown parameter, an invalid value or a repeated parameter.
    wsproto ignores unknown names and cannot read quoted values, so we check first.
    """
    parts = [p.strip() for p in offer.split(";")]
    out = [parts[0]]
    seen: set[str] = set()
    for param in parts[1:]:
        name, eq, value = param.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]  # §7.1.2.1: a quoted-string form is allowed
        kind = _DEFLATE_OFFER_PARAMS.get(name)
        if kind is None or name in seen:
            return None
        seen.add(name)
        if kind == "no":
            if eq:
                return None
            out.append(name)
        elif not eq:
            if kind == "yes":
                return None
            out.append(name)
        else:
            # §7.1.2: a decimal 8-15 without leading zeros; zlib's raw deflate cannot use 8,
            # so 8 means "not supported" and the offer is declined (wsproto refuses it too).
            if not (value.isdigit() and value[0] != "0" and 9 <= int(value) <= 15):
                return None
            out.append(f"{name}={value}")
    return "; ".join(out)


def negotiate_deflate(offers: Iterable[str]) -> tuple[PerMessageDeflate, str] | None:
    """Accept the first acceptable permessage-deflate offer (RFC 7692 §5).

    Returns the configured extension and the response header element, or None.
    """
    for offer in offers:
        name = offer.split(";", 1)[0].strip().lower()
        if name != PerMessageDeflate.name:
            continue
        normalized = _normalize_deflate_offer(offer)
        if normalized is None:
            continue  # declined: try the next offer
        ext = PerMessageDeflate()  # fresh per offer: accept() mutates it even on refusal
        try:
            params = ext.accept(normalized)
        except ValueError:  # defensive: values were validated above
            continue
        if isinstance(params, str):
            return ext, f"{PerMessageDeflate.name}; {params}" if params else PerMessageDeflate.name
    return None


def _check_header(name: Any, value: Any) -> tuple[bytes, bytes]:
    if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
        raise ASGIWebSocketError("header names and values must be byte strings")
    if not name or not all(c in _TOKEN_CHARS for c in name):
        raise ASGIWebSocketError(f"invalid header name {bytes(name)!r}")
    if any(c in _FORBIDDEN_VALUE_BYTES for c in value):
        raise ASGIWebSocketError(f"invalid header value for {bytes(name)!r}")
    return bytes(name), bytes(value)


def _app_headers(raw: Any) -> list[tuple[bytes, bytes]]:
    if raw is None:
        return []
    try:
        pairs = [tuple(item) for item in raw]
    except TypeError:
        raise ASGIWebSocketError("headers must be an iterable of [name, value] pairs") from None
    out = []
    for pair in pairs:
        if len(pair) != 2:
            raise ASGIWebSocketError("each header must be a [name, value] pair")
        out.append(_check_header(pair[0], pair[1]))
    return out


def http_response(
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    server: bytes | None = None,
    date: bytes | None = None,
    content_length: bool = True,
) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response (used for errors and denials)."""
    phrase = _phrase(status)
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    if server is not None:
        parts.append(b"server: " + server + b"\r\n")
    if date is not None:
        parts.append(b"date: " + date + b"\r\n")
    for name, value in headers:
        parts.append(name + b": " + value + b"\r\n")
    if content_length:
        parts.append(b"content-length: %d\r\n" % len(body))
    # The connection was upgraded-or-nothing: after a refusal it is never reused.
    parts.append(b"connection: close\r\n\r\n")
    parts.append(body)
    return b"".join(parts)


# ------------------------------------------------------------------------------ frame encoding


def _frame_header(first: int, length: int) -> bytes:
    # RFC 6455 §5.2: 7-bit length, or 126 + 16-bit, or 127 + 64-bit; server frames unmasked.
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


Frame = bytes | tuple[bytes, bytes]

# wsproto connection states in which input is still parsed (as in wsproto's Connection).
_READING: Final = (WsprotoState.OPEN, WsprotoState.LOCAL_CLOSING)

# One-entry fan-out cache: (payload, frame).  A group broadcast sends the same str/bytes object
# to many connections in a row, so the frame is encoded once.  Safe because (1) server frames are
# unmasked (RFC 6455 §5.1) and, without compression, depend only on opcode and payload; (2) only
# immutable ``str``/``bytes`` payloads are cached, compared by identity first then by type and
# value; (3) payload and frame live in one tuple swapped by a single assignment, so even loops in
# other threads never see a payload paired with another payload's frame.  It keeps at most one
# payload and one frame alive.
_fanout_cache: tuple[object, Frame] = (None, b"")


def _not_utf8(exc: UnicodeEncodeError) -> ASGIWebSocketError:
    # A str with lone surrogates cannot be sent as a text frame (RFC 6455 §5.6: UTF-8).
    return ASGIWebSocketError(f"websocket.send 'text' is not encodable as UTF-8: {exc.reason}")


def encode_data_frame(data: str | bytes | bytearray | memoryview) -> Frame:
    """Encode one unfragmented, uncompressed text (``str``) or binary message frame."""
    global _fanout_cache
    cached = _fanout_cache
    last = cached[0]
    if data is last or (type(data) is type(last) and data == last):
        return cached[1]
    if isinstance(data, str):
        try:
            payload = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _not_utf8(exc) from None
        first = 0x80 | OP_TEXT
    else:
        payload = data if type(data) is bytes else bytes(data)
        first = 0x80 | OP_BINARY
    header = _frame_header(first, len(payload))
    frame: Frame = header + payload if len(payload) <= JOIN_LIMIT else (header, payload)
    if type(data) is str or type(data) is bytes:
        _fanout_cache = (data, frame)
    return frame


# RFC 6455 §5.5: a control frame payload is ≤125 bytes; a Close spends 2 on the status code.
MAX_CLOSE_REASON_BYTES: Final = 123


def close_payload_reason(reason: str) -> str:
    """Trim a close reason to the 123 bytes that fit a control frame (RFC 6455 §5.5)."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= 123:
        return reason
    return encoded[:123].decode("utf-8", errors="ignore")


# ------------------------------------------------------------------------------------- events


@dataclass(slots=True)
class MessageReceived:
    """A complete data message (fragments reassembled); ``data`` is str for text frames."""

    data: str | bytes


@dataclass(slots=True)
class PongReceived:
    payload: bytes


@dataclass(slots=True)
class Closed:
    """The WebSocket is closed for the application: deliver ``websocket.disconnect``.

    ``failed`` means the server failed the connection (RFC 6455 §7.1.7: protocol error, bad
    UTF-8, too big) after queueing a Close frame; no more input will be parsed.
    """

    code: int
    reason: str = ""
    failed: bool = False


Event = MessageReceived | PongReceived | Closed


# --------------------------------------------------------------------------------- connection


class WebSocketConnection:
    """One server-side WebSocket: ASGI rules on the way out, wsproto frames on the way in."""

    __slots__ = (
        "_chunked",
        "_deflate",
        "_denial_head",
        "_early",
        "_extension_header",
        "_frames",
        "_input_broken",
        "_max_size",
        "_msg_joined",
        "_msg_parts",
        "_msg_size",
        "_outbox",
        "_owed_pong",
        "_pending_input",
        "_per_message_deflate",
        "_wire",
        "_wire_state",
        "handshake",
        "hold_pongs",
        "state",
    )

    def __init__(
        self, handshake: Handshake, *, max_size: int, per_message_deflate: bool = False
    ) -> None:
        self.handshake = handshake
        self.state = State.CONNECTING
        self._max_size = max_size
        self._per_message_deflate = per_message_deflate
        self._deflate: PerMessageDeflate | None = None
        self._extension_header: str | None = None
        # wsproto's frame layer once accepted, with the state of the closing handshake as
        # wsproto's Connection would track it (OPEN, LOCAL_CLOSING, REMOTE_CLOSING, CLOSED).
        self._wire: FrameProtocol | None = None
        self._wire_state = WsprotoState.OPEN
        self._frames: Iterator[WireFrame] | None = None
        self._early = bytearray()  # bytes that arrived before accept (client jumped the gun)
        self._pending_input = bytearray()  # deflate only: input not yet fed to wsproto
        self._input_broken = False
        # Pieces of the message being received: all str (text) or all bytes (binary).
        self._msg_parts: list[Any] = []
        self._msg_joined = 0  # leading entries of _msg_parts that are already joined runs
        self._msg_size = 0
        self._outbox = bytearray()
        # Set by the I/O layer while the peer is not reading our output: pings are then
        # answered once, for the latest one, when writing resumes (see ``owed_pong``).
        self.hold_pongs = False
        self._owed_pong: bytes | None = None
        self._denial_head: tuple[int, list[tuple[bytes, bytes]], bytes | None, bytes | None] | None
        self._denial_head = None
        self._chunked = False

    # ---------------------------------------------------------------- application -> wire
    def _negotiate(self) -> None:
        if self._per_message_deflate and self._extension_header is None:
            result = negotiate_deflate(self.handshake.extension_offers)
            if result is not None:
                self._deflate, self._extension_header = result
            else:
                self._extension_header = ""

    def accept(self, message: Mapping[str, Any], *, server: bytes | None = None) -> bytes:
        """``websocket.accept``: build the 101 response (RFC 6455 §4.2.2) and open the frames."""
        self._require(State.CONNECTING, "websocket.accept")
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if not isinstance(subprotocol, str):
                raise ASGIWebSocketError("websocket.accept 'subprotocol' must be a str or None")
            # §4.2.2 item 5.5: the server must pick one of the client's offers.
            if subprotocol not in self.handshake.subprotocols:
                raise ASGIWebSocketError(
                    f"subprotocol {subprotocol!r} was not offered by the client "
                    f"(offered: {self.handshake.subprotocols!r})"
                )
        headers = _app_headers(message.get("headers"))
        for name, _ in headers:
            if name.lower() in _RESERVED_ACCEPT_HEADERS:
                raise ASGIWebSocketError(
                    f"websocket.accept must not set {name.decode()!r}; the server sets it"
                    + (" (use 'subprotocol')" if name.lower() == b"sec-websocket-protocol" else "")
                )
        self._negotiate()
        parts = [
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-accept: " + accept_token(self.handshake.key) + b"\r\n"
        ]
        if subprotocol is not None:
            parts.append(b"sec-websocket-protocol: " + subprotocol.encode("latin-1") + b"\r\n")
        extensions: list[Extension] = []
        if self._deflate is not None and self._extension_header:
            extensions.append(self._deflate)
            parts.append(
                b"sec-websocket-extensions: " + self._extension_header.encode("latin-1") + b"\r\n"
            )
        if server is not None and not any(n.lower() == b"server" for n, _ in headers):
            parts.append(b"server: " + server + b"\r\n")  # the app's own Server wins
        for name, value in headers:
            parts.append(name + b": " + value + b"\r\n")
        parts.append(b"\r\n")
        self._wire = FrameProtocol(client=False, extensions=extensions)
        self._wire_state = WsprotoState.OPEN
        self.state = State.OPEN
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.receive_data(early)
        return b"".join(parts)

    def deny(
        self, status: int = 403, *, server: bytes | None = None, date: bytes | None = None
    ) -> bytes:
        """Refuse the handshake with a bare HTTP error (close before accept → 403, ASGI spec)."""
        self._require(State.CONNECTING, "websocket.close")
        self.state = State.CLOSED
        return http_response(status, [], b"", server=server, date=date)

    def response_start(
        self, message: Mapping[str, Any], *, server: bytes | None = None, date: bytes | None = None
    ) -> None:
        """``websocket.http.response.start`` (denial extension); the head goes out with the
        first body chunk so each ASGI send is one write."""
        self._require(State.CONNECTING, "websocket.http.response.start")
        status = message.get("status")
        # 1xx are interim responses (RFC 9110 §15.2): a client would wait for the final one.
        if type(status) is not int or not 200 <= status <= 999:
            raise ASGIWebSocketError(f"invalid denial response status {status!r}")
        headers = []
        has_length = False
        for name, value in _app_headers(message.get("headers")):
            lname = name.lower()
            if lname in _DENIAL_SERVER_HEADERS:
                # The server owns framing and the connection (it always closes after a
                # denial), so the app's values would contradict ours: drop them.
                continue
            if lname == b"content-length":
                # RFC 9110 §8.6: one non-negative decimal; as for http.response.start, a bad
                # value is the app's error rather than something to guess around.
                if not value.strip().isdigit():
                    raise ASGIWebSocketError(f"invalid denial content-length {value!r}")
                if has_length:
                    raise ASGIWebSocketError("denial response has several content-length headers")
                has_length = True
            elif lname == b"server":
                server = None  # the app's own Server/Date replace ours, not duplicate them
            elif lname == b"date":
                date = None
            headers.append((name, value))
        self.state = State.DENYING
        self._denial_head = (status, headers, server, date)

    def response_body(self, message: Mapping[str, Any]) -> bytes:
        """``websocket.http.response.body``: returns bytes to write; CLOSED after the last."""
        self._require(State.DENYING, "websocket.http.response.body")
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise ASGIWebSocketError("websocket.http.response.body 'body' must be bytes")
        more = bool(message.get("more_body", False))
        chunk = bytes(body)
        head = self._denial_head
        out = b""
        if head is not None:
            self._denial_head = None
            status, headers, server, date = head
            has_length = any(n.lower() == b"content-length" for n, _ in headers)
            chunked = more and not has_length
            if chunked:
                # Streaming body of unknown length: chunked coding (RFC 9112 §7.1).
                headers = [*headers, (b"transfer-encoding", b"chunked")]
            self._chunked = chunked
            if not chunked:
                # Whole body in this chunk (or the app gave Content-Length): one write.
                out = http_response(
                    status, headers, chunk, server=server, date=date, content_length=not has_length
                )
                chunk = b""
            else:
                out = http_response(
                    status, headers, b"", server=server, date=date, content_length=False
                )
        if self._chunked:
            if chunk:
                out += b"%x\r\n" % len(chunk) + chunk + b"\r\n"
            if not more:
                out += b"0\r\n\r\n"
        else:
            out += chunk
        if not more:
            self.state = State.CLOSED
        return out

    def abort_denial(self, *, server: bytes | None = None, date: bytes | None = None) -> bytes:
        """The app ended (or crashed) mid-denial: a 500 if nothing was written, else nothing
        (the caller closes the connection, which truncates the response visibly)."""
        self._require(State.DENYING, "aborting a denial response")
        self.state = State.CLOSED
        if self._denial_head is None:
            return b""
        self._denial_head = None
        return http_response(500, [], b"", server=server, date=date)

    def send_data(self, data: str | bytes | bytearray | memoryview) -> Frame:
        """One data message, as one frame (``websocket.send``)."""
        if self.state is not State.OPEN:
            if self.state is State.CONNECTING:
                raise ASGIWebSocketError("websocket.send before websocket.accept")
            if self.state is State.DENYING:
                raise ASGIWebSocketError("websocket.send during an HTTP denial response")
            raise ClientDisconnected("WebSocket connection is closed")
        if self._deflate is None:
            return encode_data_frame(data)
        wire = self._wire
        assert wire is not None
        if self._wire_state is not WsprotoState.OPEN:
            return b""
        if isinstance(data, str):
            try:
                return bytes(wire.send_data(data))
            except UnicodeEncodeError as exc:  # raised before wsproto changes any state
                raise _not_utf8(exc) from None
        return bytes(wire.send_data(bytes(data)))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        """Start the closing handshake (RFC 6455 §7.1.2); returns the Close frame."""
        if self.state is not State.OPEN:
            return b""
        self.state = State.CLOSING
        return self._send_close(code, close_payload_reason(reason))

    def _send_close(self, code: int | None, reason: str | None = None) -> bytes:
        """Our Close frame, moving the closing handshake on (RFC 6455 §7.1.2/§5.5.1)."""
        wire = self._wire
        state = self._wire_state
        if wire is None or state not in (WsprotoState.OPEN, WsprotoState.REMOTE_CLOSING):
            return b""
        if state is WsprotoState.REMOTE_CLOSING:
            self._wire_state = WsprotoState.CLOSED
        else:
            self._wire_state = WsprotoState.LOCAL_CLOSING
        return bytes(wire.close(code, reason))

    def fail(self, code: int, reason: str = "") -> Closed:
        """Fail the connection (RFC 6455 §7.1.7): queue a Close frame, stop parsing input."""
        if self.state is State.OPEN and self._wire is not None:
            self._outbox += self._send_close(code, close_payload_reason(reason))
        self.state = State.CLOSED
        self._input_broken = True
        self._pending_input.clear()
        self._msg_parts = []
        self._msg_joined = 0
        return Closed(code, reason, failed=True)

    def owed_pong(self) -> bytes:
        """The Pong for the latest Ping held while ``hold_pongs`` was set (or ``b""``)."""
        payload = self._owed_pong
        if payload is None:
            return b""
        self._owed_pong = None
        wire = self._wire
        if self.state is not State.OPEN or wire is None:
            return b""
        if self._wire_state is not WsprotoState.OPEN:
            return b""
        return bytes(wire.pong(payload))

    def ping(self, payload: bytes = b"") -> bytes:
        wire = self._wire
        if self.state is not State.OPEN or wire is None:
            return b""
        if self._wire_state is not WsprotoState.OPEN:
            return b""
        return bytes(wire.ping(payload))

    def app_message(
        self, message: Mapping[str, Any], *, server: bytes | None = None, date: bytes | None = None
    ) -> Frame:
        """Apply one ASGI send message; returns what to write (maybe ``b""``).

        Raises :class:`ASGIWebSocketError` for an invalid or out-of-order message and
        :class:`ClientDisconnected` for data sent after the connection closed.
        """
        try:
            mtype = message["type"]
        except (KeyError, TypeError):
            raise ASGIWebSocketError("ASGI message must be a dict with a 'type' key") from None
        if mtype == "websocket.send":
            text = message.get("text")
            data = message.get("bytes")
            if text is not None:
                if data is not None:
                    raise ASGIWebSocketError("websocket.send needs exactly one of text/bytes")
                if not isinstance(text, str):
                    raise ASGIWebSocketError("websocket.send 'text' must be str")
                return self.send_data(text)
            if data is None:
                raise ASGIWebSocketError("websocket.send needs exactly one of text/bytes")
            if not isinstance(data, bytes | bytearray | memoryview):
                raise ASGIWebSocketError("websocket.send 'bytes' must be bytes")
            return self.send_data(data)
        if mtype == "websocket.accept":
            if self.state is State.CLOSED:
                raise ClientDisconnected("WebSocket connection is closed")
            return self.accept(message, server=server)
        if mtype == "websocket.close":
            code = message.get("code")
            code = CLOSE_NORMAL if code is None else code
            reason = message.get("reason") or ""
            if type(code) is not int or not (code in _SENDABLE_CODES or 3000 <= code <= 4999):
                raise ASGIWebSocketError(f"invalid WebSocket close code {code!r}")
            if not isinstance(reason, str):
                raise ASGIWebSocketError("websocket.close 'reason' must be str")
            # (30 characters are at most 120 UTF-8 bytes: short reasons skip the encode.)
            if len(reason) > 30 and len(reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
                # RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of them the
                # code.  Silently cutting the app's text would hide its bug: refuse instead.
                raise ASGIWebSocketError(
                    f"websocket.close 'reason' is {len(reason.encode('utf-8'))} bytes in UTF-8; "
                    f"a Close frame carries at most {MAX_CLOSE_REASON_BYTES}"
                )
            if self.state is State.CONNECTING:
                return self.deny(403, server=server, date=date)
            if self.state is State.DENYING:
                raise ASGIWebSocketError("websocket.close during an HTTP denial response")
            # Closing twice, or after the peer closed, is harmless: nothing more to say.
            return self.close(code, reason)
        if mtype == "websocket.http.response.start":
            if self.state is State.CLOSED:
                raise ClientDisconnected("WebSocket connection is closed")
            self.response_start(message, server=server, date=date)
            return b""
        if mtype == "websocket.http.response.body":
            if self.state is State.CLOSED:
                raise ClientDisconnected("WebSocket connection is closed")
            return self.response_body(message)
        raise ASGIWebSocketError(f"unexpected ASGI message type {mtype!r} on a WebSocket")

    def _require(self, state: State, what: str) -> None:
        if self.state is not state:
            raise ASGIWebSocketError(f"{what} is not allowed in state {self.state.value}")

    # ---------------------------------------------------------------- wire -> application
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; then call :meth:`next_event` until it returns None."""
        if self._input_broken or self.state is State.CLOSED:
            return  # failed or finished: input is read and dropped until the peer hangs up
        wire = self._wire
        if wire is None:
            # The client must wait for the 101 (RFC 6455 §4.1); keep what it sent early.
            self._early += data
            return
        if self._deflate is not None:
            self._pending_input += data
        elif self._wire_state in _READING:
            wire.receive_bytes(data)

    @property
    def buffered_early(self) -> int:
        return len(self._early)

    def data_to_send(self) -> bytes:
        """Bytes produced while reading (pongs, Close replies, failure Close frames)."""
        if not self._outbox:
            return b""
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def next_event(self) -> Event | None:
        """The next event from the input fed so far, or None when more input is needed."""
        wire = self._wire
        if wire is None or self._input_broken:
            return None
        while True:
            frames = self._frames
            if frames is None:
                frames = self._frames = wire.received_frames()
            try:
                frame = next(frames, None)
            except ParseFailed as exc:
                # wsproto picks the code: 1002 for framing errors, 1007 for bad UTF-8 (RFC
                # 6455 §7.4.1, §8.1).  Its generator is finished; fail() stops all input.
                self._frames = None
                return self.fail(int(exc.code), "")
            if frame is None:
                self._frames = None
                if self._pending_input and self._wire_state in _READING:
                    chunk = bytes(self._pending_input[:_DEFLATE_FEED_SLICE])
                    del self._pending_input[:_DEFLATE_FEED_SLICE]
                    wire.receive_bytes(chunk)
                    continue
                return None
            opcode = frame.opcode
            # str (text), bytes (binary, ping, pong) or (code, reason) (close), by opcode.
            payload: Any = frame.payload
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                result = self._data(payload, frame.message_finished, opcode is Opcode.TEXT)
                if result is not None:
                    return result
            elif opcode is Opcode.PING:
                # RFC 6455 §5.5.2/§5.5.3: answer with a Pong carrying the same payload.
                if self._wire_state is WsprotoState.OPEN:
                    if self.hold_pongs:
                        # §5.5.3 lets us answer only the most recent Ping.  A peer that pings
                        # but never reads would otherwise make us buffer pongs without bound.
                        self._owed_pong = bytes(payload)
                    else:
                        self._outbox += wire.pong(payload)
            elif opcode is Opcode.PONG:
                return PongReceived(bytes(payload))
            elif opcode is Opcode.CLOSE:
                code, reason = payload  # checked by wsproto (codes, UTF-8 reason)
                return self._close_event(code, reason)

    def _data(self, piece: Any, finished: bool, text: bool) -> Event | None:
        if self.state is not State.OPEN:
            return None  # after our Close, data frames are read and discarded (§1.4)
        if piece:
            if isinstance(piece, str):
                # isascii() is O(1) on CPython; only non-ASCII text pays for a byte count.
                self._msg_size += len(piece) if piece.isascii() else len(piece.encode())
            else:
                self._msg_size += len(piece)
            if self._msg_size > self._max_size:
                # RFC 6455 §7.4.1: 1009, the message is too big to process.
                return self.fail(CLOSE_TOO_BIG, "message too big")
            parts = self._msg_parts
            parts.append(piece)
            if len(parts) - self._msg_joined >= _JOIN_PIECES:
                # Many small fragments: join the latest run so per-object overhead (~50 bytes
                # per piece) cannot multiply the memory that ws_max_size is meant to bound.
                # Only the new run is copied, so each byte is copied once more at most.
                start = self._msg_joined
                parts[start:] = [
                    "".join(parts[start:]) if type(piece) is str else b"".join(parts[start:])
                ]
                self._msg_joined = start + 1
        if not finished:
            return None
        parts = self._msg_parts
        self._msg_parts = []
        self._msg_joined = 0
        self._msg_size = 0
        # A message that arrived in one read is one piece: hand it over without joining.
        if text:
            return MessageReceived(parts[0] if len(parts) == 1 else "".join(parts))
        if len(parts) == 1:
            return MessageReceived(bytes(parts[0]))
        return MessageReceived(b"".join(parts))

    def _close_event(self, code: int, reason: str) -> Event:
        # The peer's Close (RFC 6455 §5.5.1); the closing handshake moves on as in wsproto.
        if self._wire_state is WsprotoState.LOCAL_CLOSING:
            self._wire_state = WsprotoState.CLOSED
        else:
            self._wire_state = WsprotoState.REMOTE_CLOSING
        if self.state is State.OPEN:
            # §5.5.1: answer a Close we did not initiate with a Close (echoing the code).
            # A Close without a code (1005) is answered without one.
            self._outbox += self._send_close(None if code == CloseReason.NO_STATUS_RCVD else code)
        self.state = State.CLOSED
        return Closed(int(code), reason or "")

    def connection_lost(self) -> Closed | None:
        """The transport is gone; returns the disconnect to deliver, if not already closed."""
        self._input_broken = True
        if self.state is State.CLOSED:
            return None
        self.state = State.CLOSED
        return Closed(CLOSE_ABNORMAL)  # §7.1.5: no Close frame received
