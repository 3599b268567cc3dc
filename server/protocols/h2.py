"""``H2Protocol``: the asyncio glue between a transport and ``server.sansio.h2``.

One protocol per HTTP/2 connection, one ``Stream`` (ASGI ``receive``/``send``,
server.protocols.h2_stream) and one task per request stream; RFC 8441 WebSocket streams are
``WebSocketStream`` (server.protocols.h2_ws).
A connection becomes HTTP/2 in one of two ways, both decided by the HTTP/1.1 protocol that
accepted it (``take_over``): TLS with ALPN "h2", or a cleartext connection whose first bytes
are the HTTP/2 connection preface (h2c with prior knowledge, RFC 9113 section 3.3).

Flow control both ways: request body bytes are acknowledged (WINDOW_UPDATE) only as the
application receives them, so the client can never have more than one stream window of body
waiting per stream; a response ``send`` waits while the stream's (or the connection's) send
window is empty, at most ``--http2-send-timeout`` seconds, after which the stream is reset.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, cast
from urllib.parse import quote

from h2.errors import ErrorCodes

from server.access_log import AccessLog
from server.config import Config
from server.datecache import date_line
from server.metrics import recorder as _metrics
from server.protocols.common import (
    ConnectionTimer,
    connection_info,
    log_access,
    server_line,
    start_task,
)
from server.protocols.flow import FlowControl
from server.protocols.h2_stream import FlowStream, Stream
from server.sansio.h2 import (
    Body,
    BodyEnd,
    Failed,
    GoingAway,
    H2Server,
    Refused,
    Request,
    Reset,
    WindowOpened,
)
from server.sansio.h2_head import H2Head
from server.sansio.h2_response import field_pairs
from server.sansio.request import RequestHead
from server.sansio.scope import ConnectionInfo, http_scope, split_target, websocket_scope
from server.sansio.ws_errors import ClientDisconnected
from server.state import ServerState
from server.types import ASGIApp, HTTPScope, WebSocketScope

logger = logging.getLogger("server.http")

# Output is written once per loop turn: the responses of every stream that answered in this
# turn (h2load and browsers send many requests in one read) go out in one ``write``, one
# syscall, instead of one each.  Past this many queued DATA bytes a send writes at once, so
# the transport's water marks still hold back an application that sends without pausing.
WRITE_BATCH: Final = 64 * 1024

# How long a connection ended by an error GOAWAY stays open to discard the client's input.
LINGER_TIMEOUT: Final = 2.0


def alpn_is_h2(transport: asyncio.BaseTransport) -> bool:
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2"


def take_over(old: Any, transport: asyncio.Transport, data: bytes) -> None:
    """Hand a freshly accepted connection from the HTTP/1.1 protocol ``old`` to HTTP/2.

    ``old`` has done nothing with the connection yet except ``connection_made``: it leaves the
    server state and its timers here, and the HTTP/2 protocol replays ``data`` (the bytes read
    so far, starting with the preface) after its own ``connection_made``."""
    old.hand_off()  # out of the server state, its request-head deadline cancelled
    proto = H2Protocol(old.config, old.app, old.state, old.loop)
    transport.set_protocol(proto)
    proto.connection_made(transport)
    if data:
        proto.data_received(data)


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection; see the module docstring."""

    def __init__(
        self,
        config: Config,
        app: ASGIApp,
        state: ServerState,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.app = app
        self.state = state
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.h2 = H2Server(
            max_concurrent_streams=config.http2_max_concurrent_streams,
            max_header_list_size=config.limit_request_header_size,
            max_fields=config.limit_request_headers,
        )
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.info: ConnectionInfo | None = None
        self.streams: dict[int, FlowStream] = {}
        self.closed = False
        self._write_due = False  # a write_now is scheduled for the end of this loop turn
        self._idle_timer = ConnectionTimer(self.loop)
        self._access = AccessLog(config.access_log)
        # Metrics (server.metrics.recorder): None when off, else what this connection adds to.
        rec = self._rec = _metrics.active if config.metrics_enabled else None
        self._traffic = rec.protocol("h2") if rec is not None else None
        health = config.health_check_path
        # Compared with the raw (percent-encoded) path, as the HTTP/1.1 protocol does.
        self._health = quote(health).encode("ascii") if health else None
        # The same lines as HTTP/1.1: Server and the --header values.
        self._server = field_pairs(server_line(config))

    # --- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.flow = FlowControl(transport)
        self.info = connection_info(transport, self.config)
        self.state.add_connection(self)
        self.h2.initiate()
        self.write_now()  # the server preface goes out before the client says anything
        if self.state.shutting_down:
            self.shutdown()
        else:
            self._arm_idle(self.config.timeout_request_header)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._traffic is not None:
            self._traffic.bytes_in += len(data)
        h2conn = self.h2
        for event in h2conn.receive_data(data, self.loop.time()):
            kind = type(event)
            if kind is Body:
                assert isinstance(event, Body)
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.feed(event.data, event.flow_length)
                else:
                    h2conn.acknowledge(event.stream_id, event.flow_length)
            elif kind is Request:
                assert isinstance(event, Request)
                self._on_request(event)
            elif kind is BodyEnd:
                assert isinstance(event, BodyEnd)
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.end_of_request()
            elif kind is WindowOpened:
                assert isinstance(event, WindowOpened)
                if event.stream_id:
                    stream = self.streams.get(event.stream_id)
                    if stream is not None:
                        stream.window_changed()
                else:
                    for stream in list(self.streams.values()):
                        stream.window_changed()
            elif kind is Reset:
                assert isinstance(event, Reset)
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.lost()  # the app sees http.disconnect / websocket.disconnect
            elif kind is Refused:
                assert isinstance(event, Refused)
                if event.status:
                    self.respond_plain(event.stream_id, event.status, event.reason, ended=False)
            elif kind is GoingAway:
                # The client ends the connection.  h2 refuses to send anything once it has
                # received a GOAWAY, so streams still in flight cannot be answered: their
                # apps see a disconnect.
                self._lose_streams()
                self.close()
                return
            elif kind is Failed:
                assert isinstance(event, Failed)
                logger.debug(
                    "HTTP/2 connection from %s ended: %s",
                    self.info and self.info.client,
                    event.reason,
                )
                self.write_now()
                self._lose_streams()
                self._linger()
                return
        self.flush()

    def eof_received(self) -> bool | None:
        return None

    def _linger(self) -> None:
        """Close after a GOAWAY for an error while the client may still be sending: closing
        at once would make the kernel answer its unread bytes with a RST, which can destroy
        the GOAWAY before the client reads it.  Input is discarded from now on; the socket
        closes when the client closes or after ``LINGER_TIMEOUT``."""
        self.closed = True
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(LINGER_TIMEOUT, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.remove_connection(self)
        self._idle_timer.cancel()
        if self.flow is not None:
            self.flow.connection_lost()
        self._lose_streams()

    def _lose_streams(self) -> None:
        for stream in list(self.streams.values()):
            stream.lost()
            task = stream.task
            if task is not None and not task.done():
                self.loop.call_later(self.config.application_close_timeout, task.cancel)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # --- runtime API -------------------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful stop: GOAWAY with the last stream id (RFC 9113 section 6.8); streams in
        flight finish (the runtime aborts what is left after the grace time)."""
        if self.closed:
            return
        self.h2.goaway()
        for stream in list(self.streams.values()):
            stream.shutdown_hint()
        self.flush()
        if not self.streams:
            self.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush_anyway()
            self.transport.close()

    # --- helpers used by streams -------------------------------------------------------
    def flush(self) -> None:
        """Have what h2 queued written: at the end of this loop turn (see ``WRITE_BATCH``),
        or now when enough DATA is waiting for the transport's backpressure to matter."""
        if self.closed:
            return
        if self.h2.queued >= WRITE_BATCH:
            self.write_now()
        elif not self._write_due:
            self._write_due = True
            self.loop.call_soon(self._write_soon)

    def _write_soon(self) -> None:
        self._write_due = False
        self.write_now()

    def write_now(self) -> None:
        if self.closed:
            return
        out = self.h2.data_to_send()
        if out:
            self.transport.write(out)
            if self._traffic is not None:
                self._traffic.bytes_out += len(out)

    def flush_anyway(self) -> None:
        out = self.h2.data_to_send()
        if out and not self.transport.is_closing():
            self.transport.write(out)
            if self._traffic is not None:
                self._traffic.bytes_out += len(out)

    def acknowledge(self, stream_id: int, size: int) -> None:
        self.h2.acknowledge(stream_id, size)
        self.flush()

    def send_interim(self, stream_id: int) -> None:
        self.h2.send_headers(stream_id, [(b":status", b"100")])
        self.flush()

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        if self.config.date_header:
            # date_line() is b"date: <value>\r\n", cached for the second.
            return [(b"date", date_line()[6:-2]), *self._server]
        return self._server

    # --- streams -----------------------------------------------------------------------
    def _on_request(self, event: Request) -> None:
        state = self.state
        state.total_requests += 1
        self._idle_timer.cancel()
        info = self.info
        assert info is not None
        head = event.head
        config = self.config
        sid = event.stream_id
        limit = config.limit_request_body
        if limit is not None and head.content_length is not None and head.content_length > limit:
            self.respond_plain(sid, 413, "Request body too large", ended=event.ended)
            self._served_directly(sid, head, 413)
            return
        health = self._health
        if (
            health is not None
            and head.method in (b"GET", b"HEAD")
            and split_target(head.target)[0] == health
        ):
            self.respond_plain(sid, 200, "OK", ended=event.ended)
            self._served_directly(sid, head, 200)
            return
        busy = config.limit_concurrency
        if busy is not None and len(state.connections) + len(state.tasks) > busy:
            self.respond_plain(sid, 503, "Service Unavailable", ended=event.ended)
            self._served_directly(sid, head, 503)
            return
        stream: FlowStream
        scope: HTTPScope | WebSocketScope
        if head.websocket:
            from server.protocols.h2_ws import WebSocketStream

            scope = websocket_scope(
                cast(RequestHead, head),
                info,
                lifespan_state=state.lifespan_state,
                forwarded_allow_ips=config.forwarded_allow_ips,
            )
            stream = WebSocketStream(self, event.stream_id, head, scope)
        else:
            extensions: dict[str, dict[str, Any]] = {
                "http.response.pathsend": {},
                "http.response.zerocopysend": {},
                # HTTP/2 frames trailers natively (RFC 9113 section 8.1), whatever TE says.
                "http.response.trailers": {},
            }
            scope = http_scope(
                cast(RequestHead, head),
                info,
                lifespan_state=state.lifespan_state,
                extensions=extensions,
                forwarded_allow_ips=config.forwarded_allow_ips,
            )
            stream = Stream(self, event.stream_id, head, scope)
            if self._rec is not None:
                stream.started_at = _metrics.clock()
            if event.ended:
                stream.request_done = True
            else:
                stream.watch_body()
        self.streams[event.stream_id] = stream
        stream.task = start_task(self.loop, state, self._run_app(stream))

    def respond_plain(self, stream_id: int, status: int, text: str, *, ended: bool) -> None:
        """A response made by the server itself (errors, health check).  ``ended``: the
        request is complete; otherwise the client is told to stop sending its body."""
        body = text.encode("latin-1", "replace") + b"\n"
        headers = [
            (b":status", b"%d" % status),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            *self.default_headers(),
        ]
        if self.h2.send_headers(stream_id, headers):
            self.h2.send_data(stream_id, body, True)
            if not ended:
                # RFC 9113 section 8.1: a complete response before the request ended; NO_ERROR
                # asks the client to stop sending.
                self.h2.reset(stream_id, ErrorCodes.NO_ERROR)

    def response_done(self, stream: Stream) -> None:
        if self._rec is not None:
            self._rec.response(stream.head.method, stream.status, stream.started_at)
        if self._access.enabled:
            self._log_line(stream.head, stream.status)
        stream.wake()

    def log_access(self, head: H2Head, status: int) -> None:
        """A response made by the server itself, or a WebSocket handshake's outcome (h2_ws):
        the metrics (untimed) and the access log."""
        if self._rec is not None:
            self._rec.request(head.method, status)
        self._log_line(head, status)

    def _log_line(self, head: H2Head, status: int) -> None:
        if self._access.enabled and self.info is not None:
            log_access(self._access, self.info.client, head.method, head.target, b"2", status)

    async def _run_app(self, stream: FlowStream) -> None:
        try:
            await self.app(stream.scope, stream, stream.send)
        except asyncio.CancelledError:
            stream.app_failed()
            raise
        except ClientDisconnected:
            stream.app_returned()  # ASGI 2.4: our "connection closed" is not an app error
        except BaseException:
            logger.exception("Exception in ASGI application")
            stream.app_failed()
        else:
            stream.app_returned()
        finally:
            self._stream_done(stream)

    def _served_directly(self, stream_id: int, head: H2Head, status: int) -> None:
        """A stream answered by the server itself: the connection may be idle again."""
        if status != 200 and self._rec is not None:
            self._rec.refusal(status)  # a configured limit answered
        self.log_access(head, status)
        self.h2.stream_finished(stream_id)
        if not self.streams and not self.closed:
            self._arm_idle(self.config.timeout_keep_alive)

    def _stream_done(self, stream: FlowStream) -> None:
        sid = stream.stream_id
        self.streams.pop(sid, None)
        self.h2.stream_finished(sid)
        self.flush()
        if self.closed:
            return
        if not self.streams:
            if self.h2.going_away:
                self.close()
            else:
                self._arm_idle(self.config.timeout_keep_alive)

    # --- idle connections --------------------------------------------------------------
    def _arm_idle(self, timeout: float) -> None:
        self._idle_timer.arm(timeout, self._on_idle)

    def _on_idle(self) -> None:
        if self.closed or self.streams:
            return
        self.h2.goaway()
        self.close()
