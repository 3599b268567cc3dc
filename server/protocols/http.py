"""``HttpProtocol``: the asyncio glue between a transport and ``server.sansio.http11``.

One protocol per connection, one ``RequestCycle`` (``server.protocols.http_cycle``) per
request, one task per request (the app call).  The ``receive`` handed to the app is the cycle
itself: ``data_received`` resolves its waiting future directly (no queue, no task per message),
and it offers ``arm(fut)`` for the direct-feed contract (see ``RequestCycle.arm``).  This module
holds the connection: parsing, the order of requests, keep-alive, lingering close, timers and
graceful shutdown; the cycle holds one exchange's ``receive`` and ``send``.

The connection's phase (idle, head, request, blocked, lingering, handed off, closed) is one
``Phase`` (``server.protocols.http_phase``), changed only by ``_to``.  The module is longer than
our usual ~600 lines on purpose: the parsing loop, keep-alive, lingering close, the one timer and
graceful shutdown all act on that phase, and apart they would spread one phase's rules over
several files.

Requests on a connection are handled strictly one after another (RFC 9112 section 9.3.2:
responses to pipelined requests go out in order); bytes of the next request wait in the parser
until the current response is complete.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, cast
from urllib.parse import quote

from server.access_log import AccessLog
from server.config import Config
from server.metrics import recorder as _metrics
from server.protocols.common import (
    ConnectionTimer,
    connection_info,
    default_headers,
    log_access,
)
from server.protocols.common import server_line as _server_line
from server.protocols.flow import FlowControl
from server.protocols.h2 import alpn_is_h2, take_over
from server.protocols.http_cycle import RequestCycle
from server.protocols.http_phase import (
    BLOCKED,
    CLOSED,
    ENDED,
    HANDED_OFF,
    HEAD,
    IDLE,
    LINGERING,
    REQUEST,
    TRANSITIONS,
    Phase,
)
from server.sansio.http11 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    HTTP11Connection,
)
from server.sansio.limits import Limits
from server.sansio.request import RequestError, RequestHead
from server.sansio.response import ResponseState
from server.sansio.scope import ConnectionInfo, http_scope, split_target, websocket_scope
from server.state import ServerState
from server.types import ASGIApp
from server.writer import simple_response, write_parts

logger = logging.getLogger("server.http")

# Request body bytes we hold for an app that is not calling receive() before we stop reading
# from the socket (pause_reading).  64 KiB: enough for typical form posts to arrive in one go,
# small enough that thousands of slow apps cannot make the server balloon.
BODY_HIGH_WATER: Final = 64 * 1024
# Pipelined bytes (requests after the one in flight) we accept before we stop reading.
PIPELINE_HIGH_WATER: Final = 64 * 1024
# Lingering close (RFC 9112 section 9.6): when we close while the client may still be sending
# (an error, or a response given without reading the whole body), closing the socket at once
# makes the kernel answer the unread bytes with a RST, which can destroy our response before
# the client reads it (the unsent part of the send queue is dropped too).  Instead we half-close
# (FIN after our response), discard whatever still arrives, and close when the client does or
# after this many seconds.
LINGER_TIMEOUT: Final = 2.0
# Graceful shutdown (SIGTERM, rolling restart) never closes a keep-alive connection under a
# request the client may already have sent: on an idle connection that request would be lost
# (reset, or EOF without a response) although the client did nothing wrong.  An idle connection
# is instead kept this long (at most its keep-alive timeout) and a request arriving meanwhile is
# answered with "connection: close", which every client handles (it reconnects, and reaches a
# worker still accepting).  Enough for a request already in flight (about one round trip);
# short enough that idle browser connections hold up a stop only briefly.  A request sent
# after the grace meets a closed connection, as at any keep-alive timeout (RFC 9112 section
# 9.3.1 lets the client retry it).
SHUTDOWN_IDLE_GRACE: Final = 1.0

# Timer kinds (one timer handle per connection; see HttpProtocol._arm_timer).
_NO_TIMER, _KEEP_ALIVE, _REQUEST_HEAD, _REQUEST_BODY = 0, 1, 2, 3


class _PerConfig:
    """What every connection derives from the (immutable) Config alike, computed once per
    Config rather than per connection: a connection per request pays for all of it."""

    __slots__ = ("config", "health", "limits", "metered", "server_line")

    def __init__(self, config: Config) -> None:
        self.config = config
        self.limits = Limits(
            config.limit_request_line,
            config.limit_request_headers,
            config.limit_request_header_size,
            config.limit_request_body,
        )
        self.server_line = _server_line(config)
        self.metered = config.metrics_enabled
        health = config.health_check_path
        # Compared with the raw (percent-encoded) path, so encoded the same way once here.
        self.health = quote(health).encode("ascii") if health else None


_PER_CONFIG: dict[int, _PerConfig] = {}


def _per_config(config: Config) -> _PerConfig:
    shared = _PER_CONFIG.get(id(config))
    if shared is None or shared.config is not config:
        if len(_PER_CONFIG) >= 16:  # configs are few; tests make many: stay bounded
            _PER_CONFIG.clear()
        shared = _PER_CONFIG[id(config)] = _PerConfig(config)
    return shared


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 (and 1.0) connection; see the module docstring."""

    # With metrics on: when the request in flight started (server.metrics.recorder.clock).
    _started = 0.0

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
        shared = _per_config(config)
        self.parser = HTTP11Connection(limits=shared.limits)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.info: ConnectionInfo | None = None
        self.cycle: RequestCycle | None = None
        # The connection's phase (see Phase, TRANSITIONS); ``closed`` mirrors "ended" for the
        # hot paths that only ask that.  The flags below are independent of the phase: the
        # app is behind on the body (reading paused), a parsing loop runs further up the
        # stack, the server is stopping, the first read may be an HTTP/2 preface.
        self.phase = IDLE
        self.closed = False
        self.body_paused = False
        self._processing = False
        self._shutdown = False
        self._sniff_h2c = False
        self._timer = ConnectionTimer(self.loop)
        self._timer_callback = self._on_timer  # bound once, not on every arm
        self._timer_kind = _NO_TIMER
        self._access = AccessLog(config.access_log)
        self._date = config.date_header
        self._server_line = shared.server_line
        self._health = shared.health
        # Metrics (server.metrics.recorder): None when off, else what this connection adds to.
        rec = self._rec = _metrics.active if shared.metered else None
        self.traffic = rec.protocols["http"] if rec is not None else None

    # --- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence a cast, not a check.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.flow = FlowControl(transport)
        config = self.config
        self.info = connection_info(transport, config)
        self.state.add_connection(self)
        if config.http2:
            # HTTP/2 hook: TLS that chose "h2" by ALPN is handed over now; cleartext
            # connections are sniffed for the h2c preface in the first data_received.
            if not self.info.secure:
                self._sniff_h2c = True
            elif alpn_is_h2(transport):
                take_over(self, transport, b"")
                return
        # Accepted while the server is stopping: serve at most one response, then close.
        self._shutdown = self.state.shutting_down
        # Slow-loris guard: the first request head must arrive within timeout_request_header.
        self._arm_timer(_REQUEST_HEAD, config.timeout_request_header)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._sniff_h2c:
            self._sniff_h2c = False
            if data[:3] == b"PRI":  # RFC 9113 section 3.4: the preface starts "PRI * HTTP/2.0"
                take_over(self, self.transport, data)
                return
        if self.traffic is not None:
            self.traffic.bytes_in += len(data)
        self.parser.receive_data(data)
        self._process()
        if self.phase is IDLE and self.parser.buffered:
            # Part of a request head is waiting.  On an idle keep-alive connection the head
            # deadline applies from now on.  (Checked after parsing, so the usual case, a
            # whole head in one read, costs no timer work at all.)
            self._to(HEAD)
            if self._timer_kind == _KEEP_ALIVE:
                self._arm_timer(_REQUEST_HEAD, self.config.timeout_request_header)

    def eof_received(self) -> bool | None:
        # A FIN from the client is treated as it going away: it cannot be told apart from a
        # closed socket, and apps waiting on receive() must learn about disconnects
        # (long-polling, streaming).  Returning None lets the transport close itself.
        self.parser.receive_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.phase is not CLOSED:
            self._to(CLOSED)
        self.state.remove_connection(self)
        self._timer.cancel()
        if self.flow is not None:
            self.flow.connection_lost()
        cycle = self.cycle
        if cycle is not None:
            cycle.lost()
            task = cycle.task
            if task is not None and not task.done():
                # --application-close-timeout (as in Daphne): an app that ignores the
                # disconnect is cancelled after this long instead of running forever.
                self.loop.call_later(self.config.application_close_timeout, task.cancel)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        if self.phase is BLOCKED:
            self._start_next_cycle()

    # --- runtime API -------------------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful stop: the in-flight response (or the next request, on an idle connection
        within ``SHUTDOWN_IDLE_GRACE``) is the last one and says "connection: close"."""
        self._shutdown = True
        phase = self.phase
        if phase is LINGERING:
            self.transport.close()  # the server is stopping: no need to wait for the client
            return
        if phase in ENDED:
            return
        cycle = self.cycle
        if cycle is not None:
            if not cycle.response.head_sent:
                cycle.response.keep_alive = False  # its head will say "connection: close"
            # Otherwise the head promised keep-alive: once the response is complete the
            # connection is idle and _start_next_cycle gives it the grace below.
        elif phase is BLOCKED:
            # The client does not read our responses (see _next_cycle): waiting for it would
            # hold the stop up; its pipelined request stays unanswered, which a pipelining
            # client must be ready for (RFC 9112 section 9.3.2).
            self.close()
        elif phase is not HEAD:
            # Idle (or accepted with no request yet): wait briefly for a request, then close.
            # (A partly received head keeps its head timer: that request is answered.)
            timer = self._timer
            remaining = timer.when() - self.loop.time() if timer.armed else SHUTDOWN_IDLE_GRACE
            kind = self._timer_kind or _KEEP_ALIVE  # an idle connection always has one armed
            self._arm_timer(kind, max(0.0, min(remaining, SHUTDOWN_IDLE_GRACE)))

    def close(self, linger: bool = False) -> None:
        """Close the connection; ``linger`` when the client may still be sending (see
        ``LINGER_TIMEOUT``)."""
        if not self.closed:
            self._timer.cancel()
            transport = self.transport
            if linger and not self._shutdown and transport.can_write_eof():
                self._to(LINGERING)  # data_received now discards everything
                self.flow.resume_reading()  # keep draining the socket so no RST is needed
                transport.write_eof()  # sent once our response is flushed
                self._timer.arm(LINGER_TIMEOUT, transport.close)
            else:
                self._to(CLOSED)
                transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.phase is not CLOSED:
                self._to(CLOSED)
            self.transport.abort()

    def hand_off(self) -> None:
        """The transport now belongs to another protocol (WebSocket after the upgrade, HTTP/2
        after its preface or ALPN): this one leaves the server state and its timer."""
        self._to(HANDED_OFF)
        self._timer.cancel()
        self.state.remove_connection(self)

    def _to(self, phase: Phase) -> None:
        """Move to ``phase``: the one place the connection changes phase (see TRANSITIONS)."""
        if phase not in TRANSITIONS[self.phase]:
            raise RuntimeError(
                f"HTTP/1.1 connection cannot go from {self.phase.name} to {phase.name}"
            )
        self.phase = phase
        self.closed = phase >= LINGERING  # LINGERING, HANDED_OFF, CLOSED: see ENDED

    # --- helpers used by RequestCycle --------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)
            if self.traffic is not None:
                self.traffic.bytes_out += len(data)

    def write_parts(self, parts: list[Any]) -> None:
        """``write_parts`` to the transport, counted (the response path inlines this)."""
        sent = write_parts(self.transport, parts)
        if self.traffic is not None:
            self.traffic.bytes_out += sent

    def default_headers(self) -> bytes:
        return default_headers(self._date, self._server_line)

    def body_due(self) -> None:
        """The client was asked for the body (100 Continue): from now on it must progress."""
        if not self.closed:
            self._arm_timer(_REQUEST_BODY, self.config.timeout_request_body)

    def resume_body(self) -> None:
        """The app consumed the buffered body: read from the socket again."""
        self.body_paused = False
        self.flow.resume_reading()
        if not self._processing:
            self._process()

    # --- parsing loop ------------------------------------------------------------------
    def _process(self) -> None:
        if self._processing:
            return  # the outer loop (further up the stack) keeps going
        self._processing = True
        try:
            self._process_events()
        finally:
            self._processing = False

    def _process_events(self) -> None:
        parser = self.parser
        while not self.closed:
            try:
                event = parser.next_event()
            except RequestError as exc:
                self._request_error(exc)
                return
            # Exact type tests, most frequent first: isinstance() on h11's event classes goes
            # through ABC __instancecheck__, several times slower (benchmarks/micro/RESULTS.md,
            # "HTTP (workload A shape)", item 4).
            kind = type(event)
            if type(event) is RequestHead:  # (spelled out so that mypy narrows it)
                if not self._on_request(event):
                    return
            elif kind is EndOfMessage:
                if self._timer_kind == _REQUEST_BODY:
                    self._timer_kind = _NO_TIMER
                if self.cycle is not None:
                    self.cycle.end_of_request()
            elif event is PAUSED:
                if parser.buffered > PIPELINE_HIGH_WATER:
                    self.flow.pause_reading()
                return
            elif event is NEED_DATA:
                cycle = self.cycle
                if cycle is not None and not cycle.request_done and not cycle.continue_pending:
                    # The body is due from the client: it must keep making progress (each
                    # read that leaves it incomplete moves the deadline).  Not while a
                    # 100-continue is unanswered: the client waits for us then.
                    self._arm_timer(_REQUEST_BODY, self.config.timeout_request_body)
                return
            elif type(event) is Data:
                cycle = self.cycle
                assert cycle is not None
                cycle.feed(event.data)
                if cycle.body_size >= BODY_HIGH_WATER:
                    # The app is behind, not the client: no body deadline while paused.
                    if self._timer_kind == _REQUEST_BODY:
                        self._timer_kind = _NO_TIMER
                    self.body_paused = True
                    self.flow.pause_reading()
                    return
            elif kind is ConnectionClosed:
                self.close()
                return

    def _on_request(self, head: RequestHead) -> bool:
        """Start serving a request head; False stops the parsing loop."""
        state = self.state
        state.total_requests += 1
        if self._rec is not None:
            self._started = _metrics.clock()
        if self._access.timed:
            self._access.start()
        self._timer_kind = _NO_TIMER
        config = self.config
        if (
            self._health is not None
            and head.method in (b"GET", b"HEAD")
            and split_target(head.target)[0] == self._health
        ):
            self._respond_directly(head, 200, b"OK")
            return not self.closed
        limit = config.limit_concurrency
        if limit is not None and len(state.connections) + len(state.tasks) > limit:
            if self._rec is not None:
                self._rec.refusal(503)
            self._respond_directly(head, 503, b"Service Unavailable", close=True)
            return False
        if head.websocket and self._upgrade(head):
            return False
        info = self.info
        assert info is not None
        extensions: dict[str, dict[str, Any]] = {
            "http.response.pathsend": {},
            "http.response.zerocopysend": {},
        }
        if head.te_trailers:
            extensions["http.response.trailers"] = {}
        scope = http_scope(
            head,
            info,
            lifespan_state=state.lifespan_state,
            extensions=extensions,
            forwarded_allow_ips=config.forwarded_allow_ips,
        )
        response = ResponseState(
            head_request=head.method == b"HEAD",
            http11=head.http_version == b"1.1",
            keep_alive=head.keep_alive and not self._shutdown,
            trailers_allowed=head.te_trailers,
        )
        cycle = RequestCycle(self, scope, head, response)
        self._to(REQUEST)
        self.cycle = cycle
        # Tracked in state.tasks until _run_app's last step takes it out: cheaper than
        # start_task's done callback (a context copy and one more loop callback per request).
        # Only a task cancelled before its first step would stay, and the server cancels
        # request tasks only when stopping (the close timeout comes long after that step).
        task = cycle.task = self.loop.create_task(self._run_app(cycle))
        state.tasks.add(task)
        return True

    def _respond_directly(
        self, head: RequestHead, status: int, body: bytes, *, close: bool = False
    ) -> None:
        """A response produced by the server itself (health check, 503)."""
        parser = self.parser
        if not head.has_body:
            parser.next_event()  # the EndOfMessage of a bodiless request
        response = ResponseState(
            head_request=head.method == b"HEAD",
            http11=head.http_version == b"1.1",
            keep_alive=head.keep_alive and not close and not self._shutdown,
        )
        response.start(
            {"status": status, "headers": [(b"content-type", b"text/plain; charset=utf-8")]},
            self.default_headers(),
        )
        self.write_parts(response.body(body, False))
        self._log(head, status)
        self._next_cycle(response.keep_alive and parser.body_complete)

    def _upgrade(self, head: RequestHead) -> bool:
        """Hand the connection to WebSocketProtocol (shared contract 3)."""
        try:
            from server.protocols.websocket import WebSocketProtocol
        except ImportError:  # pragma: no cover - only while the module does not exist
            return False
        try:
            buffered = self.parser.take_upgrade_data()
        except RequestError as exc:
            self._request_error(exc)
            return True
        info = self.info
        assert info is not None
        scope = websocket_scope(
            head,
            info,
            lifespan_state=self.state.lifespan_state,
            forwarded_allow_ips=self.config.forwarded_allow_ips,
        )
        self.hand_off()
        ws = WebSocketProtocol(self.config, self.app, self.state, self.loop)
        transport = self.transport
        transport.set_protocol(ws)
        ws.start_upgrade(transport, scope, buffered)
        return True

    def _request_error(self, exc: RequestError) -> None:
        # Client errors are the client's business: no traceback, debug level only.
        logger.debug("HTTP %d for %s: %s", exc.status, self.info and self.info.client, exc.reason)
        if self._rec is not None:
            self._rec.refusal(exc.status)
        cycle = self.cycle
        if cycle is not None:
            head_sent = cycle.response.head_sent
            cycle.lost()  # the app sees http.disconnect; its sends become no-ops
            if head_sent:
                self.abort()
                return
        if not self.closed:
            body = exc.reason.encode("latin-1", "replace") + b"\n"
            self._answer(exc.status, body, self.parser.head)
        self.close(linger=True)

    def _answer(self, status: int, body: bytes, head: RequestHead | None) -> None:
        """One response of the server's own (a request error, 408, 500) in one write; no body
        when it answers a HEAD request (``head``: the request's, if it was parsed)."""
        self.write(
            simple_response(
                status,
                body,
                extra=self.default_headers(),
                head_request=head is not None and head.method == b"HEAD",
            )
        )

    # --- end of a response -------------------------------------------------------------
    def response_done(self, cycle: RequestCycle) -> None:
        head = cycle.head
        if self._rec is not None:
            self._rec.response(head.method, cycle.response.status, self._started)
        if self._access.enabled:
            self._log_line(head, cycle.response.status)
        cycle.wake()  # a pending receive() now gets http.disconnect
        if self.cycle is not cycle:
            return
        self._next_cycle(cycle.response.keep_alive and cycle.request_done)

    def _log(self, head: RequestHead, status: int) -> None:
        """A response made by the server itself: metrics and the access log."""
        if self._rec is not None:
            self._rec.response(head.method, status, self._started)
        self._log_line(head, status)

    def _log_line(self, head: RequestHead, status: int) -> None:
        if self._access.enabled and self.info is not None:
            log_access(
                self._access, self.info.client, head.method, head.target, head.http_version, status
            )

    def _next_cycle(self, keep_alive: bool) -> None:
        self.cycle = None
        if not keep_alive or self.closed:
            # The request body may not have been read to its end (the app answered early), or
            # pipelined requests we will not answer may be arriving.
            parser = self.parser
            self.close(linger=not parser.body_complete or parser.buffered > 0)
            return
        if self.flow.write_paused:
            # The client is not reading our responses.  A finished response never waits for
            # drain(), so without this a client pipelining many requests would make us run
            # them all and buffer every response in memory; the next request waits instead
            # until the transport's buffer is below its low-water mark (resume_writing).
            self._to(BLOCKED)
            self.flow.pause_reading()
            return
        self._start_next_cycle()

    def _start_next_cycle(self) -> None:
        parser = self.parser
        parser.start_next_cycle()
        if self.body_paused:
            self.body_paused = False
        flow = self.flow
        if flow.read_paused:
            flow.resume_reading()
        if parser.buffered:
            self._to(HEAD)
            self._arm_timer(_REQUEST_HEAD, self.config.timeout_request_header)
            self._process()
        else:
            self._to(IDLE)
            timeout = self.config.timeout_keep_alive
            if self._shutdown:  # this response's head promised keep-alive (see shutdown())
                timeout = min(timeout, SHUTDOWN_IDLE_GRACE)
            self._arm_timer(_KEEP_ALIVE, timeout)

    async def _run_app(self, cycle: RequestCycle) -> None:
        try:
            await self.app(cycle.scope, cycle, cycle.send)
        except asyncio.CancelledError:
            self._app_failed(cycle)
            raise
        except BaseException:
            logger.exception("Exception in ASGI application")
            self._app_failed(cycle)
        else:
            if not cycle.response.complete and not cycle.disconnected:
                if cycle.response.head_sent:
                    logger.error("ASGI application returned without completing the response")
                else:
                    logger.error("ASGI application returned without sending a response")
                self._app_failed(cycle)
        finally:
            self.state.tasks.discard(cycle.task)

    def _app_failed(self, cycle: RequestCycle) -> None:
        if cycle.disconnected or cycle.response.complete or self.cycle is not cycle:
            return
        cycle.disconnected = True
        if cycle.response.head_sent:
            # Too late for a status code; cutting the connection tells the client the
            # response is incomplete (RFC 9112 section 8).
            if self.flow.write_paused:
                self.abort()
            else:
                self.close(linger=not cycle.request_done)
            return
        if not self.closed:
            self._answer(500, b"Internal Server Error\n", cycle.head)
            self._log(cycle.head, 500)
        self.cycle = None
        self.close(linger=not cycle.request_done)

    # --- timers --------------------------------------------------------------------------
    def _arm_timer(self, kind: int, timeout: float) -> None:
        self._timer_kind = kind
        self._timer.arm(timeout, self._timer_callback)

    def _on_timer(self) -> None:
        kind = self._timer_kind
        if kind == _NO_TIMER or self.closed:
            return
        if kind == _REQUEST_BODY:
            self._body_timeout()
            return
        if kind == _REQUEST_HEAD and self.phase is HEAD:
            # RFC 9110 section 15.5.9: 408 when the request did not arrive in time.  A
            # connection that sent nothing at all is just closed (browsers pre-connect).
            logger.debug("request head timeout for %s", self.info and self.info.client)
            self._answer(408, b"Request Timeout\n", None)
            self.close(linger=True)  # part of a head is unread: let the 408 arrive
            return
        self.close()

    def _body_timeout(self) -> None:
        """The request body made no progress for --timeout-request-body: the app gets
        http.disconnect, the client a 408 if no response has started, and the connection
        ends (the rest of the body can no longer be told apart from a next request)."""
        cycle = self.cycle
        if cycle is None or cycle.request_done or self.body_paused:
            return
        logger.debug("request body timeout for %s", self.info and self.info.client)
        head_sent = cycle.response.head_sent
        cycle.lost()  # http.disconnect for the app; its sends become no-ops
        if head_sent:
            self.close()  # too late for a status: the cut tells the client
            return
        self._answer(408, b"Request Timeout\n", cycle.head)
        self._log(cycle.head, 408)
        self.close(linger=True)  # the client may still be sending: let the 408 arrive
