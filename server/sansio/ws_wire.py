"""WebSocket frame bytes handled without wsproto (RFC 6455 section 5.2), no I/O.

* Outgoing data frames without compression: server frames are never masked (§5.1), so a frame
  is a pure function of opcode and payload, which is what makes the fan-out cache in
  :func:`encode_data_frame` safe.
* Incoming frame headers: :class:`FrameLengths` follows frame boundaries through the byte stream
  and reads each header's declared payload length, so that a frame longer than the message size
  limit is refused (1009) before any of its payload is buffered.  wsproto still parses and
  checks every frame it is given.
"""

from __future__ import annotations

import struct
from typing import Final

from server.sansio.ws_errors import ASGIWebSocketError

# Opcodes (RFC 6455 §5.2).
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2

# Payloads up to this size are joined with their frame header into one ``bytes`` (one copy is
# cheaper than a vectored write for small buffers); bigger ones go out as (header, payload) so
# the transport's ``writelines`` can send them without copying the payload.
JOIN_LIMIT: Final = 64 * 1024


def _frame_header(first: int, length: int) -> bytes:
    # RFC 6455 §5.2: 7-bit length, or 126 + 16-bit, or 127 + 64-bit; server frames unmasked.
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


Frame = bytes | tuple[bytes, bytes]

# One-entry fan-out cache: (payload, frame).  A group broadcast sends the same str/bytes object
# to many connections in a row, so the frame is encoded once.  Safe because (1) server frames are
# unmasked (RFC 6455 §5.1) and, without compression, depend only on opcode and payload; (2) only
# immutable ``str``/``bytes`` payloads are cached, compared by identity first then by type and
# value; (3) payload and frame live in one tuple swapped by a single assignment, so even loops in
# other threads never see a payload paired with another payload's frame.  It keeps at most one
# payload and one frame alive.
_fanout_cache: tuple[object, Frame] = (None, b"")


def not_utf8(exc: UnicodeEncodeError) -> ASGIWebSocketError:
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
            raise not_utf8(exc) from None
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


# ------------------------------------------------------------------------ incoming frame lengths

# A compressed (RSV1) frame may be a little longer on the wire than the message it inflates to:
# deflate stores incompressible data in blocks of at most 65535 bytes with a 5-byte header (RFC
# 1951 §3.2.4).  The header check allows for that; the inflated size is checked exactly later.
_DEFLATE_SLACK_PER_BLOCK: Final = 5
_DEFLATE_BLOCK: Final = 65535
_DEFLATE_SLACK_FIXED: Final = 64


def _deflate_slack(limit: int) -> int:
    return (limit // _DEFLATE_BLOCK + 1) * _DEFLATE_SLACK_PER_BLOCK + _DEFLATE_SLACK_FIXED


class FrameLengths:
    """Where the frame headers are in an incoming stream, and what length each declares."""

    __slots__ = ("head", "skip")

    def __init__(self) -> None:
        # Payload bytes of the current frame still to come (-1 while a header is split across
        # reads), and the start of that split header.
        self.skip = 0
        self.head = b""

    def first_too_long(self, data: bytes, max_size: int) -> int:
        """Where in ``data`` a data frame declaring more than max_size bytes starts, or -1.

        Follows the frame boundaries through the stream (RFC 6455 §5.2: 2 header bytes, a
        16- or 64-bit extended length, a 4-byte mask key when masked, then the payload) without
        copying payloads; wsproto still parses and checks every frame.
        """
        skip = self.skip
        n = len(data)
        if skip >= n:
            self.skip = skip - n
            return -1
        pos = max(skip, 0)  # -1: a header began in an earlier read (kept in ``head``)
        partial = self.head
        while pos < n:
            if partial:
                # A header that began in an earlier read (pos is 0 here): it is at most 14 bytes.
                buf = partial + data[:14]
                i = 0
                shift = len(partial)
            else:
                buf = data
                i = pos
                shift = 0
            avail = len(buf) - i
            if avail < 2:
                partial = bytes(buf[i:])
                pos = n
                break
            second = buf[i + 1]
            length = second & 0x7F
            size = (2, 4, 10)[(length >= 126) + (length == 127)] + (4 if second & 0x80 else 0)
            if avail < size:
                partial = bytes(buf[i:])
                pos = n
                break
            if length == 126:
                length = int.from_bytes(buf[i + 2 : i + 4], "big")
            elif length == 127:
                length = int.from_bytes(buf[i + 2 : i + 10], "big")
            first = buf[i]
            if not first & 0x08 and length > max_size:  # a data frame (§5.2 opcodes)
                limit = max_size
                if first & 0x40:  # RSV1: compressed (RFC 7692 §6)
                    limit += _deflate_slack(limit)
                if length > limit:
                    self.head = b""
                    return max(i - shift, 0)
            pos = i - shift + size + length
            partial = b""
        self.head = partial
        self.skip = -1 if partial else pos - n
        return -1
