"""One server-side WebSocket after the handshake, without I/O: ASGI rules, frames, closing.

Bytes and ASGI messages go in; bytes to write and events for the application come out.  No
asyncio, no sockets and no clock here (the ``Date`` header line is passed in), so every rule can
be tested by feeding bytes whole, one at a time or in random splits.

:class:`WebSocketConnection` enforces which ASGI message is legal in which state::

      CONNECTING --accept--> OPEN --close (app)--> CLOSING --peer close--> CLOSED
          |  \\--close--> CLOSED (HTTP 403)         \\--peer close / failure--> CLOSED
          \\--http.response.start--> DENYING --last body--> CLOSED

The handshake (the 101, permessage-deflate) is :mod:`server.sansio.ws_handshake`; the HTTP
responses instead of a 101 are :mod:`server.sansio.ws_denial`.

Frame bytes we handle without wsproto (outgoing data frames, the declared length of incoming
ones) are in :mod:`server.sansio.ws_wire`.  Incoming frames are parsed by wsproto's frame layer
(``FrameProtocol``: framing, unmasking, UTF-8, Close payload and extension checks) without its
``Connection`` event wrapper (we never let wsproto re-parse the HTTP request).  We keep the
four connection states that wrapper would track ourselves (``_wire_state``): the wrapper
re-dispatched every frame into an event object, a measurable share of the time per small
message (benchmarks/micro/RESULTS.md, "WebSocket").
Before bytes reach wsproto, ``ws_wire.FrameLengths`` reads each frame header's declared
length, so a frame longer than ``max_size`` is refused (1009) before its payload is buffered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, cast

from wsproto.connection import ConnectionState as WsprotoState
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed
from wsproto.frame_protocol import Frame as WireFrame

from server.sansio.ws_denial import DenialResponse, refusal
from server.sansio.ws_errors import ASGIWebSocketError, ClientDisconnected
from server.sansio.ws_handshake import Handshake, accept_response, negotiate_deflate
from server.sansio.ws_wire import (
    MAX_CLOSE_REASON_BYTES,
    Frame,
    FrameLengths,
    close_payload_reason,
    encode_data_frame,
    not_utf8,
)
from server.types import (
    WebSocketAcceptEvent,
    WebSocketResponseBodyEvent,
    WebSocketResponseStartEvent,
)

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

# With permessage-deflate, input is fed to the decompressor in slices of this size so that a
# small compressed frame cannot inflate into an unbounded buffer before the size check runs
# (deflate expands at most ~1032:1, so one slice yields at most ~4 MiB).
_DEFLATE_FEED_SLICE: Final = 4 * 1024

# A message arriving in more pieces than this (fragments or socket reads) has each run of this
# many pieces joined into one, so per-piece object overhead stays a small fraction of the payload
# (figures in benchmarks/micro/RESULTS.md, "WebSocket").
_JOIN_PIECES: Final = 256


class State(Enum):
    CONNECTING = "connecting"  # handshake received, application has not answered yet
    DENYING = "denying"  # websocket.http.response.start sent: an HTTP response is in progress
    OPEN = "open"  # 101 sent, frames flow both ways
    CLOSING = "closing"  # we sent a Close frame and wait for the peer's (RFC 6455 §7.1.2)
    CLOSED = "closed"  # nothing more goes out; the transport should be closed


# wsproto connection states in which input is still parsed (as in wsproto's Connection).
_READING: Final = (WsprotoState.OPEN, WsprotoState.LOCAL_CLOSING)


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
        "_deflate",
        "_denial",
        "_early",
        "_extension_header",
        "_frames",
        "_input_broken",
        "_lengths",
        "_max_size",
        "_msg_joined",
        "_msg_parts",
        "_msg_size",
        "_outbox",
        "_owed_pong",
        "_pending_input",
        "_per_message_deflate",
        "_too_long",
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
        # Declared frame lengths (``ws_wire.FrameLengths``), and whether input stopped at a
        # frame declaring more than max_size (1009 once the frames before it are read).
        self._lengths = FrameLengths()
        self._too_long = False
        # Pieces of the message being received: all str (text) or all bytes (binary).
        self._msg_parts: list[Any] = []
        self._msg_joined = 0  # leading entries of _msg_parts that are already joined runs
        self._msg_size = 0
        self._outbox = bytearray()
        # Set by the I/O layer while the peer is not reading our output: pings are then
        # answered once, for the latest one, when writing resumes (see ``owed_pong``).
        self.hold_pongs = False
        self._owed_pong: bytes | None = None
        self._denial: DenialResponse | None = None

    # ---------------------------------------------------------------- application -> wire
    def accept(self, message: WebSocketAcceptEvent, *, server: bytes = b"") -> bytes:
        """``websocket.accept``: the 101 (RFC 6455 §4.2.2); frames flow from now on.

        ``server`` is the server's ``server: ...\\r\\n`` line (or ``b""``).
        """
        self._require(State.CONNECTING, "websocket.accept")
        if self._per_message_deflate and self._extension_header is None:
            result = negotiate_deflate(self.handshake.extension_offers)
            if result is not None:
                self._deflate, self._extension_header = result
            else:
                self._extension_header = ""
        out = accept_response(self.handshake, message, self._extension_header, server)
        extensions: list[Extension] = []
        if self._deflate is not None and self._extension_header:
            extensions.append(self._deflate)
        self._wire = FrameProtocol(client=False, extensions=extensions)
        self._wire_state = WsprotoState.OPEN
        self.state = State.OPEN
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.receive_data(early)
        return out

    def deny(self, status: int = 403, default_headers: bytes = b"") -> bytes:
        """Refuse the handshake with a bare HTTP error (close before accept → 403, ASGI spec).

        ``default_headers`` are the server's Date/Server lines, as for any HTTP response.
        """
        self._require(State.CONNECTING, "websocket.close")
        self.state = State.CLOSED
        return refusal(status, (), b"", default_headers)

    def response_start(
        self, message: WebSocketResponseStartEvent, default_headers: bytes = b""
    ) -> None:
        """``websocket.http.response.start`` (denial extension); the head goes out with the
        first body chunk so each ASGI send is one write."""
        self._require(State.CONNECTING, "websocket.http.response.start")
        self._denial = DenialResponse(message, default_headers)
        self.state = State.DENYING

    def response_body(self, message: WebSocketResponseBodyEvent) -> Frame:
        """``websocket.http.response.body``: returns what to write; CLOSED after the last."""
        self._require(State.DENYING, "websocket.http.response.body")
        denial = self._denial
        assert denial is not None
        parts = denial.body(message)
        if denial.complete:
            self.state = State.CLOSED
            self._denial = None
        return b"".join(parts)

    def abort_denial(self, default_headers: bytes = b"") -> bytes:
        """The app ended (or crashed) mid-denial: a 500 if nothing was written, else nothing
        (the caller closes the connection, which truncates the response visibly)."""
        self._require(State.DENYING, "aborting a denial response")
        self.state = State.CLOSED
        denial, self._denial = self._denial, None
        if denial is None or denial.head_sent:
            return b""
        return refusal(500, (), b"", default_headers)

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
                raise not_utf8(exc) from None
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
        wire = self._control_wire()
        return b"" if wire is None else bytes(wire.pong(payload))

    def ping(self, payload: bytes = b"") -> bytes:
        wire = self._control_wire()
        return b"" if wire is None else bytes(wire.ping(payload))

    def _control_wire(self) -> FrameProtocol | None:
        """The frame layer while we answer or send Pings: the connection is open and no Close
        was sent or received yet; None otherwise."""
        wire = self._wire
        if self.state is not State.OPEN or self._wire_state is not WsprotoState.OPEN:
            return None
        return wire

    def app_message(
        self, message: Mapping[str, Any], *, server: bytes = b"", date: bytes = b""
    ) -> Frame:
        """Apply one ASGI send message; returns what to write (maybe ``b""``).

        ``message`` comes from the application, so it is a plain mapping until its type and
        fields are checked here (then it is one of :data:`server.types.WebSocketSendEvent`).

        ``server`` and ``date`` are the server's own header lines (``b"server: ...\\r\\n"``,
        ``b"date: ...\\r\\n"``, or ``b""`` to leave one out), used by the 101 (Server only)
        and by HTTP refusals and denials (both).

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
            return self.accept(cast(WebSocketAcceptEvent, message), server=server)
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
                return self.deny(403, date + server)
            if self.state is State.DENYING:
                raise ASGIWebSocketError("websocket.close during an HTTP denial response")
            # Closing twice, or after the peer closed, is harmless: nothing more to say.
            return self.close(code, reason)
        if mtype == "websocket.http.response.start":
            if self.state is State.CLOSED:
                raise ClientDisconnected("WebSocket connection is closed")
            self.response_start(cast(WebSocketResponseStartEvent, message), date + server)
            return b""
        if mtype == "websocket.http.response.body":
            if self.state is State.CLOSED:
                raise ClientDisconnected("WebSocket connection is closed")
            return self.response_body(cast(WebSocketResponseBodyEvent, message))
        raise ASGIWebSocketError(f"unexpected ASGI message type {mtype!r} on a WebSocket")

    def _require(self, state: State, what: str) -> None:
        if self.state is not state:
            raise ASGIWebSocketError(f"{what} is not allowed in state {self.state.value}")

    # ---------------------------------------------------------------- wire -> application
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; then call :meth:`next_event` until it returns None."""
        if self._input_broken or self._too_long or self.state is State.CLOSED:
            return  # failed or finished: input is read and dropped until the peer hangs up
        wire = self._wire
        if wire is None:
            # The client must wait for the 101 (RFC 6455 §4.1); keep what it sent early.
            self._early += data
            return
        if self._wire_state not in _READING:
            return
        n = len(data)
        lengths = self._lengths
        if 6 <= n < 132 and data[1] == n + 122 and not lengths.skip:
            # The usual read: exactly one whole small masked frame (second byte 0x80 | length,
            # length = n - 6 <= 125, §5.2), at a frame boundary: no scan.  (Below a max_size
            # of 125 such a frame is refused by the message size check instead.)
            cut = -1
        else:
            cut = lengths.first_too_long(data, self._max_size)
        if cut >= 0:
            # RFC 6455 §7.4.1 (1009): refused on the header, before any of its payload is held.
            # The frames before it are still read; next_event fails the connection after them.
            self._too_long = True
            data = data[:cut]
        if self._deflate is not None:
            self._pending_input += data
        elif data:
            wire.receive_bytes(data)

    @property
    def buffered(self) -> int:
        """Input bytes held (early input, not yet parsed, or parts of an unfinished message)."""
        held = len(self._early) + len(self._pending_input) + self._msg_size
        wire = self._wire
        if wire is not None:
            held += len(wire._frame_decoder.buffer)
        return held

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
                if self._too_long:
                    return self.fail(CLOSE_TOO_BIG, "message too big")
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
                # Many small fragments: join the latest run so per-object overhead (a Python
                # object per piece) cannot multiply the memory that ws_max_size is meant to bound.
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
