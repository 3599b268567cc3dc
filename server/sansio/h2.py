"""HTTP/2 protocol state without I/O: the ``h2`` connection, request heads, the guards against
the HTTP/2 denial-of-service attacks, and the ASGI response rules for a stream.

Bytes and the current time go in (``receive_data(data, now)``); events and bytes to write come
out.  No asyncio, no sockets, no clock: the asyncio glue is ``server.protocols.h2``.

What this module adds to the ``h2`` library (RFC 9113):

* A frame-header scanner in front of ``h2`` (``_FrameScanner``).  It reads only the 9-byte
  frame headers and refuses, before ``h2`` buffers anything:
  - a header block (HEADERS + CONTINUATION frames) larger than the header-size limit: ``h2``
    itself keeps up to 64 CONTINUATION frames of up to 16 KiB each before it looks at them
    (the 2024 "CONTINUATION flood");
  - floods of frames that cost us work but the client nothing: PING, SETTINGS, RST_STREAM,
    PRIORITY, empty DATA/HEADERS-less frames (token buckets, time passed in).
* Rapid reset (CVE-2023-44487) and its 2025 variant (CVE-2025-8671, streams the client makes
  the server reset with invalid frames): reset streams are counted in a token bucket; past the
  bound the connection is ended with GOAWAY ENHANCE_YOUR_CALM.  Streams whose
  application is still running count against SETTINGS_MAX_CONCURRENT_STREAMS until the
  application returns (the caller reports that with ``stream_finished``), so cancelled
  requests cannot pile up work behind the client's back.
  (A client that opens more streams than advertised while it still counts the earlier ones as
  open meets h2's own check first, a connection error PROTOCOL_ERROR, where RFC 9113 section
  5.1.2 would allow a stream error: h2 offers no way to refuse just the stream.)
* HPACK bombs: the decoded header list is bounded by ``max_header_list_size`` from the first
  frame on (``h2`` applies the advertised setting only once the client acknowledged it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hpack import Decoder, Encoder
from hyperframe.frame import GoAwayFrame

from server.sansio.response import ASGIProtocolError

# RFC 9113 section 3.4: the client connection preface.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6) and flags the scanner looks at.
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
_PING, _CONTINUATION = 0x6, 0x9
_FLAG_END_STREAM, _FLAG_ACK, _FLAG_END_HEADERS = 0x1, 0x1, 0x4

# Stream receive window we advertise (SETTINGS_INITIAL_WINDOW_SIZE): the request body bytes we
# hold per stream for an application that has not called receive() yet.  Same bound as the
# HTTP/1.1 protocol's body high-water mark.
STREAM_WINDOW: Final = 64 * 1024

# Slack allowed between the encoded header block and the decoded header list limit: the encoded
# form of a field is never longer than its decoded size (name + value + 32, RFC 9113 section
# 6.5.2) apart from padding (<= 255 bytes a frame) and dynamic table size updates.
_BLOCK_SLACK: Final = 4096

# Token buckets: (tokens added per second, bucket size).  A browser sends a handful of SETTINGS
# and PINGs per connection and cancels streams when a page is left; these bounds are far above
# that and far below what an attack needs to hurt.
PING_RATE: Final = (10.0, 50.0)
SETTINGS_RATE: Final = (10.0, 50.0)
RESET_RATE: Final = (50.0, 200.0)  # client RST_STREAMs (CVE-2023-44487)
PRIORITY_RATE: Final = (100.0, 500.0)
EMPTY_FRAME_RATE: Final = (100.0, 500.0)  # DATA without payload or END_STREAM

# Connection-specific header fields a response must not carry (RFC 9113 section 8.2.2).
_CONNECTION_FIELDS: Final = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)

# tchar (RFC 9110 section 5.6.2), lower case only: HTTP/2 field names are lower case.
_NAME_CHARS: Final = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"


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


class _FrameScanner:
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


def _table_mark(table: Any) -> tuple[object, int, int]:
    """What identifies an HPACK dynamic table's state: entries are only ever added at the
    front as new tuples, so the front entry's identity, the count and the size limit change
    whenever the table does."""
    entries = table.dynamic_entries
    return (entries[0] if entries else None, len(entries), table.maxsize)


class RepeatingEncoder(Encoder):
    """An HPACK encoder that reuses the block of a header list it just encoded.

    RFC 7541 encoding is a function of the header list and the dynamic table; when encoding a
    list left the table unchanged (every field was indexed), the same list against the same
    table gives the same bytes and changes nothing.  Responses repeat their head (status,
    content-type, the Date of this second, Server), so most skip the encoder.
    """

    def __init__(self) -> None:
        super().__init__()
        self._key: tuple[Any, ...] | None = None
        self._mark: tuple[object, int, int] | None = None
        self._block = b""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        table = self.header_table
        if table.resized or not isinstance(headers, list):
            return super().encode(headers, huffman)
        key = tuple(headers)
        mark = _table_mark(table)
        if key == self._key and mark == self._mark and mark[0] is self._mark[0]:
            return self._block
        block = super().encode(headers, huffman)
        after = _table_mark(table)
        if after == mark and after[0] is mark[0]:
            self._key, self._mark, self._block = key, mark, block
        return block


class RepeatingDecoder(Decoder):
    """An HPACK decoder that reuses the field list of a block it just decoded, under the same
    rule as ``RepeatingEncoder``: same bytes, same table, and the table left unchanged (clients
    resend the same indexed block for every request of a page or a load test)."""

    def __init__(self) -> None:
        super().__init__()
        self._data = b""
        self._mark: tuple[object, int, int] | None = None
        self._fields: list[Any] = []

    def decode(self, data: bytes, raw: bool = False) -> Any:
        table = self.header_table
        mark = _table_mark(table)
        if raw and data == self._data and mark == self._mark and mark[0] is self._mark[0]:
            return list(self._fields)
        fields = super().decode(data, raw)
        after = _table_mark(table)
        if raw and after == mark and after[0] is mark[0]:
            self._data, self._mark, self._fields = bytes(data), mark, list(fields)
        return fields


class H2Head:
    """A request's pseudo-header fields and the facts the server needs from its fields.

    Shaped like the HTTP/1.1 ``RequestHead`` where the scope builder reads it (``method``,
    ``target``, ``http_version``, ``headers``), so one scope builder serves both.
    """

    __slots__ = (
        "content_length",
        "expect_continue",
        "headers",
        "http_version",
        "method",
        "protocol",
        "scheme",
        "target",
        "te_trailers",
        "websocket",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.scheme = b""
        self.protocol = b""
        self.http_version = b"2"
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.expect_continue = False
        self.te_trailers = False
        self.websocket = False


class HeadError(Exception):
    """A request head we answer with an HTTP error on its stream (status, reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_head(fields: Iterable[tuple[bytes, bytes]], *, max_fields: int) -> H2Head:
    """Build an ``H2Head`` from a decoded header list that ``h2`` already validated (pseudo
    fields first and once each, lower-case names, no connection-specific fields)."""
    head = H2Head()
    headers = head.headers
    authority = b""
    cookies: list[bytes] = []
    host_index = -1
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                head.method = value
            elif name == b":path":
                head.target = value
            elif name == b":authority":
                authority = value
            elif name == b":scheme":
                head.scheme = value
            elif name == b":protocol":
                head.protocol = value
            continue
        if b"_" in name:
            # CVE-2015-0219, as in HTTP/1.1: "x_auth_user" would shadow "x-auth-user" in WSGI
            # style environments (Django's META).
            continue
        if name == b"cookie":
            # RFC 9113 section 8.2.3: crumbs split over several fields are joined with "; "
            # before the request reaches an HTTP/1.1 style consumer.
            cookies.append(value)
            continue
        if name == b"content-length":
            if not value.isdigit():
                raise HeadError(400, "invalid content-length")
            head.content_length = int(value)
        elif name == b"expect":
            head.expect_continue = value.lower() == b"100-continue"
        elif name == b"te":
            # RFC 9113 section 8.2.2: the only TE value allowed in HTTP/2 is "trailers".
            head.te_trailers = value.strip().lower() == b"trailers"
        elif name == b"host":
            host_index = len(headers)
        headers.append((name, value))
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    if len(headers) > max_fields:
        raise HeadError(431, "too many header fields")
    if authority:
        # ASGI (HTTP/2): :authority goes first as "host", replacing a Host field if any.
        if host_index >= 0:
            del headers[host_index]
        headers.insert(0, (b"host", authority))
    if head.method == b"CONNECT":
        if head.protocol.lower() == b"websocket" and head.target:
            head.websocket = True  # RFC 8441 section 4: extended CONNECT
        else:
            raise HeadError(405, "CONNECT is not supported")
    elif not head.target.startswith(b"/") and not (
        head.method == b"OPTIONS" and head.target == b"*"
    ):
        raise HeadError(400, "invalid :path")
    return head


# --- events handed to the I/O layer ----------------------------------------------------------


@dataclass(slots=True)
class Request:
    stream_id: int
    head: H2Head
    ended: bool  # END_STREAM came with the head: no body


@dataclass(slots=True)
class Refused:
    """A new stream refused before it reached the application (status 0: RST_STREAM sent)."""

    stream_id: int
    status: int
    reason: str


@dataclass(slots=True)
class Body:
    stream_id: int
    data: bytes
    flow_length: int  # what to acknowledge once consumed (data plus padding)


@dataclass(slots=True)
class BodyEnd:
    stream_id: int


@dataclass(slots=True)
class Reset:
    """The client cancelled the stream (RST_STREAM) or h2 reset it for a stream error."""

    stream_id: int


@dataclass(slots=True)
class WindowOpened:
    """Send windows grew (stream ``stream_id`` or, for 0, every stream)."""

    stream_id: int


@dataclass(slots=True)
class GoingAway:
    """The client sent GOAWAY: no new streams; finish the ones below ``last_stream_id``."""

    error_code: int


@dataclass(slots=True)
class Failed:
    """The connection is over (a GOAWAY is queued in ``data_to_send``); close after writing."""

    reason: str


Event = Request | Refused | Body | BodyEnd | Reset | WindowOpened | GoingAway | Failed


class H2Server:
    """The server side of one HTTP/2 connection (``h2`` plus the guards above)."""

    __slots__ = (
        "_active",
        "_conn",
        "_failed",
        "_out",
        "_resets",
        "_scanner",
        "going_away",
        "last_stream_id",
        "max_fields",
        "max_streams",
    )

    def __init__(
        self,
        *,
        max_concurrent_streams: int = 100,
        max_header_list_size: int = 65536,
        max_fields: int = 100,
        enable_connect_protocol: bool = True,
    ) -> None:
        # Outbound fields are checked once by ``response_headers`` (lower-case names, no
        # connection-specific fields, no CR/LF/NUL), so h2's own per-field pass is skipped.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        conn = h2.connection.H2Connection(config=config)
        conn.encoder = RepeatingEncoder()
        conn.decoder = RepeatingDecoder()
        self._conn = conn
        self.max_streams = max_concurrent_streams
        self.max_fields = max_fields
        # HPACK bomb guard from the first HEADERS frame on: h2 only applies our advertised
        # SETTINGS_MAX_HEADER_LIST_SIZE when the client has acknowledged it.
        conn.decoder.max_header_list_size = max_header_list_size
        settings: dict[h2.settings.SettingCodes, int] = {
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list_size,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
        }
        if enable_connect_protocol:
            settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1  # RFC 8441 section 3
        conn.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self._scanner = _FrameScanner(max_header_list_size + _BLOCK_SLACK)
        self._resets = TokenBucket(*RESET_RATE)
        # Streams whose application has not returned yet (the concurrency that costs us).
        self._active: set[int] = set()
        self._failed = False
        self._out = bytearray()  # frames we build ourselves, written before h2's output
        self.going_away = False
        self.last_stream_id = 0

    def initiate(self) -> None:
        """Queue our SETTINGS (RFC 9113 section 3.4: the server preface) and open the
        connection window to one stream window per allowed stream: a stream whose application
        does not read its body must not stall the uploads of the others."""
        conn = self._conn
        conn.initiate_connection()
        extra = STREAM_WINDOW * self.max_streams - 65535
        if extra > 0:
            conn.increment_flow_control_window(min(extra, 2**31 - 1 - 65535))

    @property
    def failed(self) -> bool:
        return self._failed

    # --- input ----------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> list[Event]:
        if self._failed:
            return []
        reason = self._scanner.scan(data, now)
        if reason is not None:
            return [self._fail(reason, ErrorCodes.ENHANCE_YOUR_CALM)]
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued a GOAWAY with the right code (DenialOfServiceError: ENHANCE_YOUR_CALM).
            self._failed = True
            return [Failed(str(exc) or type(exc).__name__)]
        out: list[Event] = []
        for event in events:
            kind = type(event)
            if kind is h2.events.DataReceived:
                assert isinstance(event, h2.events.DataReceived)
                sid = event.stream_id
                assert sid is not None
                # (END_STREAM on a DATA frame also comes as its own StreamEnded event.)
                out.append(Body(sid, event.data or b"", event.flow_controlled_length or 0))
            elif kind is h2.events.RequestReceived:
                assert isinstance(event, h2.events.RequestReceived)
                out.append(self._request(event, event.stream_ended is not None))
            elif kind is h2.events.StreamEnded:
                assert isinstance(event, h2.events.StreamEnded)
                assert event.stream_id is not None
                out.append(BodyEnd(event.stream_id))
            elif kind is h2.events.StreamReset:
                assert isinstance(event, h2.events.StreamReset)
                assert event.stream_id is not None
                out.append(Reset(event.stream_id))
                # Streams opened and cancelled faster than the bound: by RST_STREAM from the
                # client (CVE-2023-44487, "rapid reset") or by frames that make h2 reset the
                # stream itself (a WINDOW_UPDATE overflowing the window...: CVE-2025-8671,
                # "MadeYouReset"), so both kinds count.
                if not self._resets.take(now):
                    out.append(self._fail("rapid reset", ErrorCodes.ENHANCE_YOUR_CALM))
                    return out
            elif kind is h2.events.WindowUpdated:
                assert isinstance(event, h2.events.WindowUpdated)
                out.append(WindowOpened(event.stream_id or 0))
            elif kind is h2.events.RemoteSettingsChanged:
                out.append(WindowOpened(0))  # INITIAL_WINDOW_SIZE may have grown
            elif kind is h2.events.ConnectionTerminated:
                assert isinstance(event, h2.events.ConnectionTerminated)
                self.going_away = True
                out.append(GoingAway(int(event.error_code or 0)))
            elif kind is h2.events.TrailersReceived:
                pass  # ASGI has no request trailers; END_STREAM comes as StreamEnded
        return out

    def _request(self, event: h2.events.RequestReceived, ended: bool) -> Request | Refused:
        sid = event.stream_id
        assert sid is not None
        self.last_stream_id = max(self.last_stream_id, sid)
        if self.going_away:
            self._conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return Refused(sid, 0, "connection is going away")
        if len(self._active) >= self.max_streams:
            # Every allowed stream still has a running application (some perhaps for
            # requests the client already cancelled): refuse, the client may retry
            # (RFC 9113 section 8.7).
            self._conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return Refused(sid, 0, "too many streams in progress")
        try:
            head = parse_head(event.headers or (), max_fields=self.max_fields)
        except HeadError as exc:
            return Refused(sid, exc.status, exc.reason)
        self._active.add(sid)
        return Request(sid, head, ended)

    def _fail(self, reason: str, code: ErrorCodes) -> Failed:
        self._failed = True
        self._conn.close_connection(code, last_stream_id=self.last_stream_id)
        return Failed(reason)

    def stream_finished(self, stream_id: int) -> None:
        """The stream's application returned: it no longer counts against the limit."""
        self._active.discard(stream_id)

    # --- output ---------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        if self._out:
            out = bytes(self._out) + self._conn.data_to_send()
            self._out.clear()
            return out
        return self._conn.data_to_send()

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` flow-controlled bytes: let the client send more
        (h2 sends WINDOW_UPDATE once enough was consumed to be worth a frame)."""
        if size and not self._failed:
            self._conn.acknowledge_received_data(size, stream_id)

    def send_headers(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool = False
    ) -> bool:
        """False when the stream is gone (reset by the client meanwhile)."""
        try:
            self._conn.send_headers(stream_id, headers, end_stream=end_stream)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return False
        return True

    def window(self, stream_id: int) -> int:
        """Bytes of DATA the stream may send now (stream and connection windows)."""
        try:
            return self._conn.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return -1

    def send_data(self, stream_id: int, data: bytes | memoryview, end_stream: bool) -> int:
        """Send as much of ``data`` as the windows allow (in frames of the peer's maximum
        size); returns the count sent, -1 when the stream is gone.  ``end_stream`` applies
        only when everything fit."""
        conn = self._conn
        try:
            window = conn.local_flow_control_window(stream_id)
            total = len(data)
            if total == 0:
                if end_stream:
                    conn.end_stream(stream_id)
                return 0
            frame = conn.max_outbound_frame_size
            sent = 0
            view = memoryview(data)
            while sent < total and window > 0:
                size = min(frame, window, total - sent)
                last = sent + size == total
                conn.send_data(stream_id, view[sent : sent + size], end_stream=end_stream and last)
                sent += size
                window -= size
            return sent
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return -1

    def end_stream(self, stream_id: int) -> bool:
        try:
            self._conn.end_stream(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return False
        return True

    def reset(self, stream_id: int, code: ErrorCodes = ErrorCodes.CANCEL) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._conn.reset_stream(stream_id, code)

    def goaway(self, code: ErrorCodes = ErrorCodes.NO_ERROR) -> None:
        """Graceful shutdown (RFC 9113 section 6.8): no new streams after the last one we
        saw; the ones in flight go on."""
        if self.going_away or self._failed:
            return
        self.going_away = True
        # Built by hand: h2's close_connection() moves its state machine to CLOSED, after
        # which it refuses to send the responses of the streams still in flight.
        frame = GoAwayFrame(0, last_stream_id=self.last_stream_id, error_code=int(code))
        self._out += self._conn.data_to_send()
        self._out += frame.serialize()


# --- ASGI http.response.* rules for a stream ---------------------------------------------------


# Checked response fields by the app's exact (name, value) pair: the field to send and what it
# is.  Apps answer with the same constant header tuples over and over (as for HTTP/1.1's
# field-line cache in response.py); the table is emptied when full so varying values cannot
# grow it without bound.
_PLAIN, _LENGTH, _DATE, _SERVER, _DROP = 0, 1, 2, 3, 4
_CHECKED: dict[tuple[bytes, bytes], tuple[tuple[bytes, bytes], int]] = {}
_CHECKED_MAX: Final = 512


def _check_field(name: Any, value: Any) -> tuple[tuple[bytes, bytes], int]:
    if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
        raise ASGIProtocolError("http.response.start: header names and values must be bytes")
    lname = bytes(name).lower()
    value = bytes(value)
    if not lname or lname.translate(None, _NAME_CHARS):
        raise ASGIProtocolError(f"http.response.start: invalid header {bytes(name)!r}")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise ASGIProtocolError(f"http.response.start: invalid header {bytes(name)!r}")
    if lname in _CONNECTION_FIELDS:
        # RFC 9113 section 8.2.2: MUST NOT be sent; HTTP/2 frames the body itself.
        return (lname, value), _DROP
    if lname == b"content-length":
        if not value.isdigit():
            raise ASGIProtocolError(f"http.response.start: invalid content-length {value!r}")
        return (lname, value), _LENGTH
    if lname == b"date":
        return (lname, value), _DATE
    if lname == b"server":
        return (lname, value), _SERVER
    return (lname, value), _PLAIN


def response_headers(
    status: int, raw: Any, default: list[tuple[bytes, bytes]]
) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """The header list of a response HEADERS frame, and the app's content-length if any."""
    headers = [(b":status", b"%d" % status)]
    has_date = has_server = False
    content_length: int | None = None
    checked = _CHECKED
    for pair in raw or ():
        try:
            known = checked.get(pair)
        except TypeError:  # unhashable: a [name, value] list
            known = None
        if known is None:
            try:
                name, value = pair
            except (TypeError, ValueError):
                raise ASGIProtocolError(
                    "http.response.start: headers must be [name, value] pairs"
                ) from None
            known = _check_field(name, value)
            if type(pair) is tuple and type(name) is bytes and type(value) is bytes:
                if len(checked) >= _CHECKED_MAX:
                    checked.clear()
                checked[pair] = known
        field, kind = known
        if kind == _PLAIN:
            headers.append(field)
        elif kind == _LENGTH:
            content_length = int(field[1])
            headers.append(field)
        elif kind == _DATE:
            has_date = True
            headers.append(field)
        elif kind == _SERVER:
            has_server = True
            headers.append(field)
    for name, value in default:
        if (name == b"date" and has_date) or (name == b"server" and has_server):
            continue
        headers.append((name, value))
    return headers, content_length


def field_pairs(lines: bytes) -> list[tuple[bytes, bytes]]:
    """``b"name: value\r\n..."`` header lines (the server's own: Server, ``--header``) as
    HTTP/2 fields: lower-case names, connection-specific ones left out (RFC 9113 section
    8.2.2)."""
    out = []
    for line in lines.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        name = name.strip().lower()
        if sep and name and name not in _CONNECTION_FIELDS:
            out.append((name, value.strip()))
    return out


def trailer_fields(raw: Any) -> list[tuple[bytes, bytes]]:
    out = []
    for pair in raw or ():
        name, value = pair
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise ASGIProtocolError("http.response.trailers: field names and values must be bytes")
        lname = bytes(name).lower()
        if not lname or lname.translate(None, _NAME_CHARS) or lname in _CONNECTION_FIELDS:
            raise ASGIProtocolError(f"http.response.trailers: invalid field {bytes(name)!r}")
        value = bytes(value)
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ASGIProtocolError(f"http.response.trailers: invalid field {bytes(name)!r}")
        out.append((lname, value))
    return out
