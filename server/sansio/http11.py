"""The request side of one HTTP/1.1 connection, Sans-I/O: bytes in, events out.

Each request cycle starts on the fast path: the input is held in one ``bytearray`` until the
head's blank line arrives, and the strict parser (``server.sansio.request.parse_head``) reads
it.  A plain ``Content-Length`` body (or none) is then cut from the same buffer.  Anything the
strict parser declines (and chunked bodies, absolute-form targets, heads too large to hold)
goes to a fresh ``h11.Connection`` for that cycle, fed the very same bytes: h11 is the oracle
for every edge case and its error statuses.  No asyncio, no clock.

Design notes
------------
* h11 only ever sees the client side of one cycle; at the end of an h11 cycle its unparsed
  bytes (pipelined requests) return to our buffer for the next cycle.  We never tell h11 about
  our response, which also lets us honour HTTP/1.0 ``Connection: keep-alive`` (h11 refuses).
* For a request without body framing the ``EndOfMessage`` is implied: it follows the head at
  once on both paths, and h11's ``next_event`` is not asked for it.
* Limits (request line, header count/size, body size) are enforced on both paths and surface as
  ``RequestError(status)``; the protocol answers with that status and closes.
* The responses are ``server.sansio.response``'s; this module only re-exports its names for
  callers that import everything HTTP/1.1 from here.
"""

from __future__ import annotations

from typing import Final, cast

import h11

from server.sansio.limits import Limits
from server.sansio.request import (
    RequestError,
    RequestHead,
    check_head,
    head_from_h11,
    parse_head,
)
from server.sansio.response import ASGIProtocolError, ResponseState

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ASGIProtocolError",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "HTTP11Connection",
    "RequestError",
    "RequestHead",
    "ResponseState",
]

NEED_DATA: Final = h11.NEED_DATA
PAUSED: Final = h11.PAUSED
EndOfMessage = h11.EndOfMessage
ConnectionClosed = h11.ConnectionClosed


class Data:
    """A piece of the request body (from either path)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Data({self.data!r})"


_END_OF_MESSAGE: Final = h11.EndOfMessage()
_CR_LF: Final = (13, 10)

# RFC 9112 section 7.1: a recipient MUST anticipate large chunk sizes and prevent integer
# overflow.  h11 accepts up to 20 hex digits; a size beyond what a signed 64-bit integer holds
# is read differently by other parsers on the path (wrap-around), a smuggling vector, so it is
# refused outright.
MAX_CHUNK_SIZE: Final = 2**63 - 1

Event = (
    RequestHead
    | Data
    | h11.EndOfMessage
    | h11.ConnectionClosed
    | type[h11.NEED_DATA]
    | type[h11.PAUSED]
)


class HTTP11Connection:
    """The request side of one HTTP/1.1 connection (see the module docstring)."""

    __slots__ = (
        "_conn",
        "_direct",
        "_eof",
        "_eom_due",
        "_fed",
        "_h11_head",
        "_in_head",
        "_last_bytes",
        "_last_fields",
        "_last_head",
        "_line_len",
        "_raw",
        "_remaining",
        "_scan",
        "body_complete",
        "body_received",
        "head",
        "limits",
    )

    # False: every cycle goes to h11 (the reference the differential tests compare with).
    strict_parser: bool = True

    def __init__(
        self,
        *,
        limit_request_line: int = 8190,
        limit_request_headers: int = 100,
        limit_request_header_size: int = 65536,
        limit_request_body: int | None = None,
        limits: Limits | None = None,
    ) -> None:
        if limits is None:
            limits = Limits(
                limit_request_line,
                limit_request_headers,
                limit_request_header_size,
                limit_request_body,
            )
        self.limits = limits
        # Created when a cycle goes to h11 (most never do).
        self._conn: h11.Connection | None = None
        # This cycle's input while h11 has not been given any of it.
        self._raw = bytearray()
        self._eof = False
        # The last head the strict parser took on this connection (its exact bytes), and once
        # it came twice in a row, its result (see _strict_head).
        self._last_bytes = b""
        self._last_head: RequestHead | None = None
        self._last_fields: tuple[tuple[bytes, bytes], ...] = ()
        self._reset(0)

    def _reset(self, carried: int) -> None:
        self._fed = carried  # bytes received since this cycle's request head began
        self._in_head = True
        self._line_len = -1
        self._direct = True  # input is held in _raw (h11 has none of this cycle)
        self._scan = 0  # where to resume searching _raw for the blank line
        self._remaining = 0  # body bytes still due on the fast path
        self._eom_due = False
        self._h11_head: bytearray | None = None
        self.head: RequestHead | None = None
        self.body_complete = False
        self.body_received = 0

    # --- input ---------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if not self._fed and data[:1] in (b"\r", b"\n"):
            # RFC 9112 section 2.2: ignore empty lines before a request-line (some clients
            # send a CRLF after a POST body).  h11 itself would reject them.
            data = data.lstrip(b"\r\n")
            if not data:
                return
        self._fed += len(data)
        if self._direct:
            self._raw += data
        else:
            conn = self._conn
            assert conn is not None
            if self._h11_head is not None and self._in_head:
                self._h11_head += data
            conn.receive_data(data)

    def receive_eof(self) -> None:
        if self._direct:
            if not self._in_head:
                # A fast-path body (or a finished cycle): the cycle ends by itself
                # (next_event reports a short body; start_next_cycle hands the rest to h11).
                self._eof = True
                return
            self._hand_over()
        conn = self._conn
        assert conn is not None
        if conn.their_state is not h11.ERROR:
            conn.receive_data(b"")

    def _hand_over(self) -> None:
        """Give the input held in ``_raw`` to h11; from now on h11 reads this cycle."""
        self._direct = False
        conn = self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.limits.max_head
        )
        raw = self._raw
        self._h11_head = bytearray(raw)  # the head's bytes, for check_h11_head's obs-fold test
        if raw:
            data = bytes(raw)
            raw.clear()
            conn.receive_data(data)

    @property
    def buffered(self) -> int:
        """Bytes received that were not turned into events yet (pipelined requests)."""
        if self._direct:
            return len(self._raw)
        conn = self._conn
        assert conn is not None
        return len(conn._receive_buffer)

    @property
    def awaiting_head(self) -> bool:
        return self._in_head

    def next_event(self) -> Event:
        """The next event: ``RequestHead``, ``Data``, ``EndOfMessage``, ``ConnectionClosed``,
        ``NEED_DATA`` or ``PAUSED`` (request finished; more bytes wait for the next cycle).

        Raises ``RequestError`` for anything the client got wrong.
        """
        if self.body_complete:
            return PAUSED
        if self._eom_due:
            self._eom_due = False
            self.body_complete = True
            return _END_OF_MESSAGE
        if self._direct:
            if self._in_head:
                head = self._strict_head()
                if head is not None:
                    return head
                if self._direct:
                    return NEED_DATA
            else:
                return self._body()
        return self._h11_event()

    # --- the fast path -------------------------------------------------------------------
    def _strict_head(self) -> RequestHead | None:
        """The head if the strict parser takes it; None with ``_direct`` still set when more
        bytes are needed; None after ``_hand_over`` when h11 must read it."""
        raw = self._raw
        if not raw:
            return None
        scan = self._scan
        end = raw.find(b"\r\n\r\n", scan)
        if end < 0:
            # h11 also ends a head at a blank line made with a bare LF: such a head is its;
            # so is one h11 refuses before it is complete (starting with a control or space).
            if (
                len(raw) > self.limits.hold
                or not self.strict_parser
                or raw[0] < 0x21
                or raw.find(b"\n\n", scan) >= 0
                or raw.find(b"\n\r\n", scan) >= 0
            ):
                self._hand_over()
            else:
                self._scan = max(0, len(raw) - 3)
            return None
        end += 4
        last = self._last_bytes
        if len(last) == end and self._last_head is not None and raw.startswith(last):
            # The very bytes of the last head again (health checks, pollers, API clients):
            # parsing is a pure function of them, so the result is equal.  The header list is
            # copied only from a head's second occurrence on, so a connection whose heads all
            # differ pays nothing for this (benchmarks/micro/RESULTS.md, "second pass").
            head = self._last_head.copy(self._last_fields)
        else:
            # (An earlier blank line with a bare LF, where h11 would end the head, leaves a
            # bare LF in these bytes: the strict parser declines them.)
            data = bytes(raw[:end])
            parsed = parse_head(data, self.limits) if self.strict_parser else None
            if parsed is None:
                self._hand_over()
                return None
            head = parsed
            if data == last:  # seen twice in a row: keep its fields for the next repeats
                self._last_head = head  # only its header list may change after this (the app's)
                self._last_fields = tuple(head.headers)
            else:
                self._last_bytes = data
                self._last_head = None
        del raw[:end]
        self._in_head = False
        self.head = head  # known even when refused below (a HEAD error response has no body)
        check_head(head, self.limits)
        length = head.content_length
        if length:
            self._remaining = length
        else:
            # No body by its framing (RFC 9112 section 6.3): EndOfMessage comes next.
            self._eom_due = True
        return head

    def _body(self) -> Data | type[h11.NEED_DATA]:
        """Content-Length body bytes on the fast path (RFC 9112 section 6.2)."""
        raw = self._raw
        if not raw:
            if self._eof:
                # As h11 says it: the body is incomplete, nothing else can come.
                raise RequestError(400, "peer closed connection without sending complete body")
            return NEED_DATA
        remaining = self._remaining
        if len(raw) <= remaining:
            data = bytes(raw)
            raw.clear()
        else:
            data = bytes(raw[:remaining])
            del raw[:remaining]
        size = len(data)
        self.body_received += size
        remaining -= size
        self._remaining = remaining
        if not remaining:
            self._eom_due = True
        return Data(data)

    # --- the h11 path --------------------------------------------------------------------
    def _h11_event(self) -> Event:
        conn = self._conn
        assert conn is not None
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise self._error(exc) from None
        if type(event) is h11.Data:
            self.body_received += len(event.data)
            limit = self.limits.body
            if limit is not None and self.body_received > limit:
                raise RequestError(413, "request body larger than --limit-request-body")
            if event.chunk_start and self.head is not None and self.head.chunked:
                self._check_chunk_size(len(event.data))
            return Data(event.data)
        if type(event) is h11.EndOfMessage:
            self.body_complete = True
        elif type(event) is h11.Request:
            head = self._request(event)
            if not head.has_body:
                # No body by its framing (RFC 9112 section 6.3): h11's next event is
                # EndOfMessage; we skip asking for it (h11 then pauses or waits, which
                # ends the cycle for us too).
                self._eom_due = True
            return head
        elif event is NEED_DATA:
            if self._in_head:
                self._check_head()
            elif self.head is not None and self.head.chunked:
                self._check_chunk_size(0)
        elif event is PAUSED:
            # h11 pauses after a protocol-switch proposal; for us the message is complete.
            self.body_complete = True
        # A server-side h11 connection only yields the client's events (or the sentinels).
        return cast(Event, event)

    def _request(self, request: h11.Request) -> RequestHead:
        self._in_head = False
        conn = self._conn
        assert conn is not None
        raw = self._h11_head
        self._h11_head = None
        if raw is None:  # pragma: no cover - the head always comes after _hand_over
            raw = bytearray()
        else:
            del raw[len(raw) - len(conn._receive_buffer) :]  # the rest is not the head
        head = head_from_h11(request, raw, self.limits)
        self.head = head  # known even when refused below (a HEAD error response has no body)
        check_head(head, self.limits)
        return head

    def _check_chunk_size(self, consumed: int) -> None:
        # h11 keeps what is left of the chunk being read in its reader (stable since h11
        # 0.9); plus what this chunk's first Data event already took, that is its size.
        remaining = getattr(getattr(self._conn, "_reader", None), "_bytes_in_chunk", 0)
        if remaining + consumed > MAX_CHUNK_SIZE:
            raise RequestError(400, "chunk size too large")

    def _check_head(self) -> None:
        """Limits on a head that is still incomplete (h11 only caps the whole buffer).

        Runs only once more bytes arrived than the smaller limit allows; the request line's
        length is measured once (one copy of the pending bytes) and then remembered, so a
        client trickling a big head byte by byte costs O(1) per byte.
        """
        limits = self.limits
        fed = self._fed
        line_len = self._line_len
        if line_len < 0:
            if fed <= limits.line + 2 and fed <= limits.size:
                return
            conn = self._conn
            assert conn is not None
            pending = conn.trailing_data[0]
            start = len(pending) - len(pending.lstrip(b"\r\n"))  # h11 skips leading CRLFs
            end = pending.find(b"\n", start)
            if end < 0:
                if fed - start > limits.line + 2:
                    raise RequestError(414, "request line longer than --limit-request-line")
                return
            if end - start > limits.line + 1:
                raise RequestError(414, "request line longer than --limit-request-line")
            line_len = self._line_len = end + 1
        if fed - line_len > limits.size + 2:
            raise RequestError(431, "header block larger than --limit-request-header-size")

    def _error(self, exc: h11.RemoteProtocolError) -> RequestError:
        status = exc.error_status_hint
        if status == 431 and self._in_head:
            conn = self._conn
            assert conn is not None
            pending = conn.trailing_data[0].lstrip(b"\r\n")
            if b"\n" not in pending[: self.limits.line + 2]:
                return RequestError(414, "request line longer than --limit-request-line")
            return RequestError(431, "request header block larger than allowed")
        if status == 431:
            status = 400
        return RequestError(status, str(exc) or "malformed request")

    # --- end of a cycle --------------------------------------------------------------------
    def take_upgrade_data(self) -> bytes:
        """For a protocol switch: finish the (bodiless) request, return the bytes after it."""
        if not self.body_complete:
            event = self.next_event()
            if type(event) is not h11.EndOfMessage and event is not PAUSED:
                raise RequestError(400, "upgrade request with a body")
        if self._direct:
            data = bytes(self._raw)
            self._raw.clear()
            return data
        conn = self._conn
        assert conn is not None
        return conn.trailing_data[0]

    def start_next_cycle(self) -> None:
        """Begin parsing the next request, keeping the bytes that already arrived for it."""
        raw = self._raw
        if self._direct:
            closed = self._eof
        else:
            conn = self._conn
            assert conn is not None
            data, closed = conn.trailing_data
            self._conn = None
            raw += data
        if raw and raw[0] in _CR_LF:
            raw[:] = raw.lstrip(b"\r\n")  # RFC 9112 section 2.2, as in receive_data
        self._reset(len(raw))
        if closed:
            # After EOF there is nothing more to wait for: h11 reads the rest (and reports
            # ConnectionClosed or an incomplete request) as before.
            self._hand_over()
            conn = self._conn
            assert conn is not None
            conn.receive_data(b"")
