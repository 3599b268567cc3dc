"""Response HEADERS and DATA frames written straight into ``h2``'s output buffer.

For each frame it sends, ``h2`` re-encodes the header names, computes validation flags it has
been told not to use, builds a ``hyperframe`` object with a flag set and serialises it: for a
server answering many small requests that was more than a third of the cost of a request.
``FastSend`` makes the same state changes through ``h2``'s own state machines (so every rule
``h2`` enforces about when a connection or stream may send still applies, and closed streams
are cleaned up as before), updates the same flow-control windows, and writes the frame bytes
(RFC 9113 section 4.1) itself, in the same buffer and order ``h2`` would.

Those are ``h2`` attributes outside its documented API (stable from h2 3 to 4.4).  ``FastSend.of``
returns None when any of them is missing, and the caller keeps using ``h2``'s public methods;
the tests run both ways and compare what a client decodes.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import h2.exceptions

try:
    from h2.connection import ConnectionInputs
    from h2.stream import StreamInputs
except ImportError:  # pragma: no cover - a future h2 without these: the public methods serve
    ConnectionInputs = StreamInputs = None  # type: ignore[assignment,misc]

# Frame header (RFC 9113 section 4.1): 24-bit length (as 16 + 8 bits), type, flags, stream id.
_HEAD: Final = struct.Struct(">HBBBL")
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4


class FastSend:
    """Sends on an ``h2.connection.H2Connection`` without its per-frame objects."""

    __slots__ = (
        "_conn",
        "_conn_data",
        "_conn_headers",
        "_end",
        "_info",
        "_send_data",
        "_send_headers",
    )

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._conn_headers = ConnectionInputs.SEND_HEADERS
        self._conn_data = ConnectionInputs.SEND_DATA
        self._send_headers = StreamInputs.SEND_HEADERS
        self._info = StreamInputs.SEND_INFORMATIONAL_HEADERS
        self._send_data = StreamInputs.SEND_DATA
        self._end = StreamInputs.SEND_END_STREAM

    @classmethod
    def of(cls, conn: Any) -> FastSend | None:
        if ConnectionInputs is None or StreamInputs is None:
            return None  # pragma: no cover
        if not isinstance(getattr(conn, "_data_to_send", None), bytearray):
            return None  # pragma: no cover
        for name in ("streams", "state_machine", "encoder", "outbound_flow_control_window"):
            if not hasattr(conn, name):
                return None  # pragma: no cover
        return cls(conn)

    def stream(self, stream_id: int) -> Any:
        """h2's stream object if it can be sent on this way, else None (unknown, or one that
        lacks the attributes used here: the public methods then decide what to raise)."""
        stream = self._conn.streams.get(stream_id)
        if stream is None or not hasattr(stream, "outbound_flow_control_window"):
            return None
        return stream

    def window(self, stream: Any) -> int:
        window: int = min(
            self._conn.outbound_flow_control_window, stream.outbound_flow_control_window
        )
        return window

    def headers(self, stream: Any, headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        """HEADERS (and CONTINUATION) for ``headers`` (bytes pairs, pseudo fields first).
        Raises what h2 raises when the connection or stream may not send headers now."""
        conn = self._conn
        informational = headers[0][0] == b":status" and headers[0][1][:1] == b"1"
        if informational and end_stream:
            raise h2.exceptions.ProtocolError("END_STREAM on an informational response")
        conn.state_machine.process_input(self._conn_headers)
        machine = stream.state_machine
        machine.process_input(self._info if informational else self._send_headers)
        block = conn.encoder.encode(headers)
        flags = 0
        if end_stream:
            machine.process_input(self._end)
            flags = _END_STREAM
        elif machine.trailers_sent:
            raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set.")
        out = conn._data_to_send
        sid = stream.stream_id
        size = conn.max_outbound_frame_size
        n = len(block)
        if n <= size:
            out += _HEAD.pack(n >> 8, n & 0xFF, _HEADERS, flags | _END_HEADERS, sid)
            out += block
            return
        # A block larger than the peer's frame size continues in CONTINUATION frames, with
        # END_HEADERS on the last (RFC 9113 section 6.10); END_STREAM stays on the HEADERS.
        kind = _HEADERS
        for start in range(0, n, size):
            piece = block[start : start + size]
            last = start + size >= n
            m = len(piece)
            out += _HEAD.pack(m >> 8, m & 0xFF, kind, flags | (_END_HEADERS if last else 0), sid)
            out += piece
            kind, flags = _CONTINUATION, 0

    def data(self, stream: Any, data: bytes | memoryview, end_stream: bool) -> None:
        """One DATA frame; the caller keeps it within the windows and the frame size."""
        conn = self._conn
        conn.state_machine.process_input(self._conn_data)
        machine = stream.state_machine
        machine.process_input(self._send_data)
        flags = 0
        if end_stream:
            machine.process_input(self._end)
            flags = _END_STREAM
        n = len(data)
        stream.outbound_flow_control_window -= n
        conn.outbound_flow_control_window -= n
        out = conn._data_to_send
        out += _HEAD.pack(n >> 8, n & 0xFF, _DATA, flags, stream.stream_id)
        out += data
