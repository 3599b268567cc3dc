"""Frame-level guards of an HTTP/2 connection, ahead of the ``h2`` library: token buckets and
the frame-header scanner that refuses floods and oversized header blocks before ``h2`` buffers
anything (the 2023-2024 HTTP/2 denial-of-service attacks; ``server.sansio.h2`` explains each).

No I/O and no clock: the current time is passed in.
"""

from __future__ import annotations

from typing import Final

# RFC 9113 section 3.4: the client connection preface.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6) and flags the scanner looks at.
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
_PING, _CONTINUATION = 0x6, 0x9
_FLAG_END_STREAM, _FLAG_ACK, _FLAG_END_HEADERS = 0x1, 0x1, 0x4

# Token buckets: (tokens added per second, bucket size).  A browser sends a handful of SETTINGS
# and PINGs per connection and cancels streams when a page is left; these bounds are far above
# that and far below what an attack needs to hurt.
PING_RATE: Final = (10.0, 50.0)
SETTINGS_RATE: Final = (10.0, 50.0)
PRIORITY_RATE: Final = (100.0, 500.0)
EMPTY_FRAME_RATE: Final = (100.0, 500.0)  # DATA without payload or END_STREAM


class TokenBucket:
    """``take(now)`` is False once more than ``burst`` events came faster than ``rate``/s."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp: float | None = None

    def take(self, now: float) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class FrameScanner:
    """Reads frame headers ahead of ``h2``; returns a reason string to refuse the input."""

    __slots__ = ("_block", "_buckets", "_head", "_skip", "max_block")

    def __init__(self, max_block: int) -> None:
        self.max_block = max_block
        self._skip = len(PREFACE)  # the preface itself is checked by h2
        self._head = bytearray()
        self._block = -1  # bytes of the open header block, -1 when none is open
        self._buckets = {
            _PING: TokenBucket(*PING_RATE),
            _SETTINGS: TokenBucket(*SETTINGS_RATE),
            _PRIORITY: TokenBucket(*PRIORITY_RATE),
            _DATA: TokenBucket(*EMPTY_FRAME_RATE),
        }

    def scan(self, data: bytes | bytearray | memoryview, now: float) -> str | None:
        i, n = 0, len(data)
        head = self._head
        while i < n:
            skip = self._skip
            if skip:
                take = min(skip, n - i)
                i += take
                self._skip = skip - take
                continue
            need = 9 - len(head)
            head += data[i : i + need]
            i += need
            if len(head) < 9:
                break
            length = int.from_bytes(head[0:3], "big")
            kind, flags = head[3], head[4]
            head.clear()
            self._skip = length
            if kind == _HEADERS:
                if not flags & _FLAG_END_HEADERS:
                    self._block = length
                elif length > self.max_block:
                    return "header block too large"
            elif kind == _CONTINUATION:
                if self._block >= 0:
                    self._block += length
                    if flags & _FLAG_END_HEADERS:
                        self._block = -1
                # (a CONTINUATION outside a block is h2's protocol error to report)
            elif kind in (_PING, _SETTINGS):
                if not flags & _FLAG_ACK and not self._buckets[kind].take(now):
                    return "PING flood" if kind == _PING else "SETTINGS flood"
            elif kind == _PRIORITY:
                if not self._buckets[_PRIORITY].take(now):
                    return "PRIORITY flood"
            elif (
                kind == _DATA
                and length == 0
                and not flags & _FLAG_END_STREAM
                and not self._buckets[_DATA].take(now)
            ):
                return "empty DATA frame flood"
            if self._block > self.max_block:
                return "header block too large"
        return None
