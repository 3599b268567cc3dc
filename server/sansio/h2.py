"""HTTP/2 protocol state without I/O: the ``h2`` connection of one client, the events it gives
the I/O layer, stream limits and resets.

Bytes and the current time go in (``receive_data(data, now)``); events and bytes to write come
out.  No asyncio, no sockets, no clock: the asyncio glue is ``server.protocols.h2``.  The other
ideas live next to this module: ``h2_guards`` (frame floods, header-block size), ``h2_head``
(request head checks, RFC 9113 sections 8.2-8.3), ``h2_hpack`` (HPACK that reuses repeated
blocks), ``h2_response`` (ASGI response fields), ``h2_send`` (response frames written into
``h2``'s buffer).

What this module adds to the ``h2`` library (RFC 9113):

* A frame-header scanner in front of ``h2`` (``h2_guards.FrameScanner``).  It reads only the
  9-byte frame headers and refuses, before ``h2`` buffers anything:
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
* Malformed request heads and trailers (RFC 9113 section 8.1.1) reset only their stream, with
  PROTOCOL_ERROR, and count as resets (``h2`` would end the whole connection).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Final

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from server.sansio.h2_guards import PREFACE, FrameScanner, TokenBucket
from server.sansio.h2_head import H2Head, HeadError, parse_head, trailers_malformed
from server.sansio.h2_hpack import RepeatingDecoder, RepeatingEncoder
from server.sansio.h2_send import FastSend

__all__ = ["PREFACE", "H2Server"]

# Reset streams allowed per second and burst (CVE-2023-44487, CVE-2025-8671).
RESET_RATE: Final = (50.0, 200.0)

# Stream receive window we advertise (SETTINGS_INITIAL_WINDOW_SIZE): the request body bytes we
# hold per stream for an application that has not called receive() yet.  Same bound as the
# HTTP/1.1 protocol's body high-water mark.
STREAM_WINDOW: Final = 64 * 1024

# Slack allowed between the encoded header block and the decoded header list limit: the encoded
# form of a field is never longer than its decoded size (name + value + 32, RFC 9113 section
# 6.5.2) apart from padding (<= 255 bytes a frame) and dynamic table size updates.
_BLOCK_SLACK: Final = 4096


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
        "_fast",
        "_out",
        "_resets",
        "_scanner",
        "going_away",
        "last_stream_id",
        "max_fields",
        "max_streams",
        "queued",
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
        # connection-specific fields, no CR/LF/NUL), so h2's own per-field pass is skipped;
        # inbound fields are checked by ``parse_head`` in the one pass that reads them (h2's
        # check is a chain of generators costing more than the rest of a request's head), which
        # also joins cookie crumbs.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        conn = h2.connection.H2Connection(config=config)
        conn.encoder = RepeatingEncoder()
        conn.decoder = RepeatingDecoder()
        self._conn = conn
        # Response frames bypass h2's frame objects when its internals allow (h2_send).
        self._fast = FastSend.of(conn)
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
        self._scanner = FrameScanner(max_header_list_size + _BLOCK_SLACK)
        self._resets = TokenBucket(*RESET_RATE)
        # Streams whose application has not returned yet (the concurrency that costs us).
        self._active: set[int] = set()
        self._failed = False
        self._out = bytearray()  # frames we build ourselves, written before h2's output
        self.going_away = False
        self.last_stream_id = 0
        self.queued = 0  # DATA payload bytes queued since the last data_to_send()

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
                result = self._request(event, event.stream_ended is not None, now)
                out.append(result)
                if type(result) is Failed:
                    return out
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
                # ASGI has no request trailers (END_STREAM comes as StreamEnded); malformed
                # ones still end the stream (RFC 9113 section 8.1.1).
                assert isinstance(event, h2.events.TrailersReceived)
                assert event.stream_id is not None
                if trailers_malformed(event.headers or ()) is not None:
                    self._conn.reset_stream(event.stream_id, ErrorCodes.PROTOCOL_ERROR)
                    out.append(Reset(event.stream_id))
                    if not self._resets.take(now):
                        out.append(self._fail("rapid reset", ErrorCodes.ENHANCE_YOUR_CALM))
                        return out
        return out

    def _request(
        self, event: h2.events.RequestReceived, ended: bool, now: float
    ) -> Request | Refused | Failed:
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
            if not exc.status:
                # Malformed: a stream error (RFC 9113 section 8.1.1), and one more stream the
                # client made us reset (CVE-2025-8671).
                self._conn.reset_stream(sid, ErrorCodes.PROTOCOL_ERROR)
                if not self._resets.take(now):
                    return self._fail("rapid reset", ErrorCodes.ENHANCE_YOUR_CALM)
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
        self.queued = 0
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
        fast = self._fast
        try:
            stream = fast.stream(stream_id) if fast is not None else None
            if stream is not None:
                fast.headers(stream, headers, end_stream)  # type: ignore[union-attr]
            else:
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
        fast = self._fast
        try:
            stream = fast.stream(stream_id) if fast is not None and data else None
            if stream is not None:
                window = fast.window(stream)  # type: ignore[union-attr]
            else:
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
                piece = view[sent : sent + size]
                if stream is not None:
                    fast.data(stream, piece, end_stream and last)  # type: ignore[union-attr]
                else:
                    conn.send_data(stream_id, piece, end_stream=end_stream and last)
                sent += size
                window -= size
            self.queued += sent
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
