"""asyncio glue for one WebSocket connection, over the sans-I/O core in ``server.sansio``.

The HTTP protocol parses the upgrade request and hands the transport over (no re-parse)::

    ws = WebSocketProtocol(config, app, state, loop)
    transport.set_protocol(ws); state.remove_connection(http_proto)
    ws.start_upgrade(transport, scope, buffered)

From then on this class only moves bytes and timers:

* ``receive`` is a :class:`WebSocketReceive`: messages parsed in ``data_received`` resume the
  waiting coroutine directly (no task or queue per message).  If the application stops
  receiving, parsing stops once :data:`MAX_PENDING_MESSAGES` messages or
  :data:`MAX_PENDING_BYTES` bytes are pending and reading is paused until it catches up.
* ``send`` waits for :meth:`FlowControl.drain` while the transport is above its high-water mark
  and then makes exactly one transport write per ASGI message.
* One timer handle per connection, used in turn for the connect timeout, the keepalive ping
  (interval, then pong deadline) and the closing-handshake deadline.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Final, cast

from server.access_log import AccessLog
from server.config import Config
from server.datecache import date_line
from server.metrics import recorder as _metrics
from server.metrics.recorder import parts_size
from server.protocols.common import (
    ConnectionTimer,
    default_headers,
    log_access,
    server_line,
    start_task,
)
from server.protocols.flow import FlowControl
from server.sansio.ws_errors import ClientDisconnected
from server.sansio.ws_frames import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    Closed,
    MessageReceived,
    PongReceived,
    State,
    WebSocketConnection,
)
from server.sansio.ws_handshake import HandshakeError, parse_handshake
from server.sansio.ws_wire import Frame
from server.state import ServerState
from server.types import (
    ASGIApp,
    SendEvent,
    WebSocketDisconnectEvent,
    WebSocketReceiveEvent,
    WebSocketResponseStartEvent,
    WebSocketScope,
)
from server.writer import writelines

logger = logging.getLogger("server.error")

# Back-pressure on input: stop parsing (and pause reading) once this many messages, or this many
# bytes of message data, are waiting for the application.  Worst case held in memory per
# connection: these plus one message of up to ``ws_max_size`` plus one socket read.
MAX_PENDING_MESSAGES: Final = 32
MAX_PENDING_BYTES: Final = 1024 * 1024
# Bytes a client may send before the handshake completes (it must wait, RFC 6455 §4.1) before
# we stop reading from it.
MAX_EARLY_BYTES: Final = 64 * 1024
# How long to wait for the peer's Close after ours when no ping timeout is configured.
DEFAULT_CLOSE_TIMEOUT: Final = 10.0


class WebSocketReceive:
    """The ``receive`` callable handed to the application (contract: ``__call__`` + ``arm``).

    Messages are pushed by the protocol; a pending future (armed by a consumer, or created by
    ``__call__``) is resolved directly from ``data_received``.  After ``websocket.disconnect``
    has been consumed, every further call returns it again instead of hanging.
    """

    __slots__ = ("_final", "_loop", "_on_drain", "_pending", "_pending_bytes", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_drain: Any) -> None:
        self._loop = loop
        self._on_drain = on_drain
        self._pending: collections.deque[WebSocketReceiveEvent] = collections.deque()
        self._pending_bytes = 0
        self._waiter: asyncio.Future[WebSocketReceiveEvent] | None = None
        self._final: WebSocketDisconnectEvent | None = None

    @property
    def backlogged(self) -> bool:
        return (
            len(self._pending) >= MAX_PENDING_MESSAGES or self._pending_bytes >= MAX_PENDING_BYTES
        )

    @property
    def pending(self) -> int:
        return len(self._pending)

    def push(self, message: WebSocketReceiveEvent, size: int = 0) -> None:
        if message["type"] == "websocket.disconnect":
            self._final = message
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(message)
                return
        # Nobody waiting (or the waiter was cancelled): keep it for the next call/arm.
        self._pending.append(message)
        self._pending_bytes += size

    def _pop(self) -> WebSocketReceiveEvent:
        message = self._pending.popleft()
        if message["type"] == "websocket.receive":
            data: str | bytes | None = message.get("text")
            if data is None:
                data = message.get("bytes")
            self._pending_bytes -= len(data) if data is not None else 0
        self._on_drain()
        return message

    def arm(self, fut: asyncio.Future[WebSocketReceiveEvent]) -> None:
        if self._pending:
            if not fut.done():
                fut.set_result(self._pop())
            return
        if self._final is not None:
            if not fut.done():
                fut.set_result(self._final)
            return
        self._waiter = fut

    async def __call__(self) -> WebSocketReceiveEvent:
        if self._pending:
            return self._pop()
        if self._final is not None:
            return self._final
        fut: asyncio.Future[WebSocketReceiveEvent] = self._loop.create_future()
        self._waiter = fut
        return await fut


class WebSocketProtocol(asyncio.Protocol):
    """One upgraded connection: runs the application, frames its messages."""

    def __init__(
        self,
        config: Config,
        app: ASGIApp,
        state: ServerState,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.app = app
        self.server_state = state
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.flow: FlowControl | None = None
        self.conn: WebSocketConnection | None = None
        # Empty until start_upgrade, which the HTTP protocol calls right after construction.
        self.scope = cast(WebSocketScope, {})
        self.receive = WebSocketReceive(self.loop, self._on_drain)
        self.task: asyncio.Task[None] | None = None
        self._server_line = server_line(config)
        self._timer = ConnectionTimer(self.loop)
        self._backlogged = False
        self._disconnected = False  # websocket.disconnect delivered to the app
        self._lost = False
        self._awaiting_pong = False
        self._access = AccessLog(config.access_log)
        # Metrics (server.metrics.recorder): None when off, else what this connection adds to.
        rec = self._rec = _metrics.active if config.metrics_enabled else None
        self._traffic = rec.protocols["websocket"] if rec is not None else None
        self._accepted = False  # the handshake was accepted: a session whose close counts
        # The closing-handshake deadline reuses ws_ping_timeout: both bound how long we wait
        # for the peer to answer a control frame, and Config has no separate option for it.
        # It also bounds a close whose output the peer never reads (transport.close() would
        # otherwise wait forever to flush).
        ping_timeout = config.ws_ping_timeout
        self._close_timeout = ping_timeout if ping_timeout is not None else DEFAULT_CLOSE_TIMEOUT

    # ----------------------------------------------------------------- hand-off from HTTP
    def start_upgrade(
        self, transport: asyncio.Transport, scope: WebSocketScope, buffered: bytes
    ) -> None:
        self.transport = transport
        self.flow = FlowControl(transport)
        self.server_state.add_connection(self)
        # The HTTP protocol may have paused reading while it handed over; we start fresh.
        if not transport.is_reading():
            transport.resume_reading()
        try:
            handshake = parse_handshake(scope["headers"])
        except HandshakeError as exc:
            self._write(exc.response(self._default_headers()))
            transport.close()
            self.scope = scope
            self._log(exc.status)
            return
        self.conn = WebSocketConnection(
            handshake,
            max_size=self.config.ws_max_size,
            per_message_deflate=self.config.ws_per_message_deflate,
        )
        scope["subprotocols"] = handshake.subprotocols
        extensions = dict(scope.get("extensions") or {})
        extensions["websocket.http.response"] = {}
        scope["extensions"] = extensions
        self.scope = scope
        self.receive.push({"type": "websocket.connect"})
        self._set_timer(self.config.ws_connect_timeout, self._on_connect_timeout)
        self.task = start_task(self.loop, self.server_state, self._run_app())
        if buffered:
            if self._traffic is not None:
                self._traffic.bytes_in -= len(buffered)  # read (and counted) as HTTP already
            self.data_received(buffered)

    # ----------------------------------------------------------------- application side
    async def _run_app(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass  # ASGI 2.4: our own "connection closed" exception is not an app error
        except Exception:
            logger.exception(
                "Exception in ASGI application (WebSocket %s)", self.scope.get("path", "")
            )
            self._app_finished(error=True)
            return
        except asyncio.CancelledError:
            self._app_finished(error=True)
            raise
        self._app_finished(error=False)

    def _app_finished(self, *, error: bool) -> None:
        conn = self.conn
        transport = self.transport
        if conn is None or transport is None or self._lost:
            return
        if conn.state is State.CONNECTING:
            # ASGI: returning before accept means deny (403); crashing is a 500.
            status = 500 if error else 403
            self._write(conn.deny(status, self._default_headers()))
            self._log(status)
            self._finish_http()
        elif conn.state is State.DENYING:
            # Unfinished denial response: a 500 if nothing was written yet, else cut it short.
            out = conn.abort_denial(self._default_headers())
            if out:
                self._write(out)
            self._finish_http()
        elif conn.state is State.OPEN:
            # Crash after accept → 1011 (RFC 6455 §7.4.1); a plain return → normal 1000.
            self._start_close(CLOSE_INTERNAL_ERROR if error else CLOSE_NORMAL, "")

    async def send(self, message: SendEvent) -> None:
        flow = self.flow
        conn = self.conn
        assert flow is not None and conn is not None
        if flow.write_paused:
            # Back-pressure: the client is not reading; hold the app until the buffer drains.
            await flow.drain()
        before = conn.state
        out = conn.app_message(
            message,
            server=self._server_line,
            date=self._date_line() if before is State.CONNECTING else b"",
        )
        if out:
            self._write(out)
        after = conn.state
        if after is before:
            if self._rec is not None and after is State.OPEN:
                self._rec.ws_messages_out += 1
            return  # the common case: a data frame on an open connection
        if before is State.CONNECTING and (self._access.enabled or self._rec is not None):
            status = 101 if after is State.OPEN else 403
            if after is State.DENYING:
                status = cast(WebSocketResponseStartEvent, message).get("status", status)
            self._log(status)
        if after is State.OPEN:
            self._on_accepted()
        elif after is State.CLOSING:
            self._set_timer(self._close_timeout, self._on_close_timeout)
        elif after is State.CLOSED and before in (State.CONNECTING, State.DENYING):
            self._finish_http()  # refused with 403, or the denial response is complete

    def _on_accepted(self) -> None:
        self._accepted = True
        self._cancel_timer()
        interval = self.config.ws_ping_interval
        if interval is not None:
            self._set_timer(interval, self._on_ping_timer)
        # Frames the client sent before our 101 are parsed now.
        self._process()
        if not self._backlogged and self.flow is not None:
            self.flow.resume_reading()

    def _finish_http(self) -> None:
        """After an HTTP refusal/denial: close; the app sees a disconnect (no Close frame)."""
        self._close_transport()
        self._deliver_disconnect(CLOSE_ABNORMAL, "")

    def _close_transport(self) -> None:
        """Close after flushing, but never wait longer than the close timeout for a peer
        that does not read what is still buffered (then abort)."""
        transport = self.transport
        if transport is None or self._lost:
            return
        transport.close()
        self._set_timer(self._close_timeout, self._on_close_timeout)

    def _log(self, status: int) -> None:
        """One access-log line per handshake outcome (101, 403, denial status, 4xx/5xx); in
        the metrics, a GET request with that status."""
        if self._rec is not None:
            self._rec.request("GET", status)
        if not self._access.enabled:
            return
        scope = self.scope
        target = scope.get("raw_path", b"")
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        version = scope.get("http_version", "1.1").encode("ascii", "replace")
        log_access(self._access, scope.get("client"), b"GET", target, version, status)

    def _date_line(self) -> bytes:
        return date_line() if self.config.date_header else b""

    def _default_headers(self) -> bytes:
        """Date and Server lines of an HTTP refusal or denial, exactly as on HTTP responses."""
        return default_headers(self.config.date_header, self._server_line)

    # ----------------------------------------------------------------- transport side
    def _write(self, out: Frame) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if isinstance(out, bytes):
            transport.write(out)
            if self._traffic is not None:
                self._traffic.bytes_out += len(out)
        else:
            writelines(transport, out)
            if self._traffic is not None:
                self._traffic.bytes_out += parts_size(out)

    def data_received(self, data: bytes) -> None:
        if self._traffic is not None:
            self._traffic.bytes_in += len(data)
        conn = self.conn
        if conn is None:
            return  # handshake refused; input is dropped until the close completes
        conn.receive_data(data)
        if conn.state is State.CONNECTING or conn.state is State.DENYING:
            if conn.buffered_early > MAX_EARLY_BYTES and self.flow is not None:
                self.flow.pause_reading()
            return
        if not self._backlogged:
            self._process()

    def _process(self) -> None:
        """Turn parsed input into ASGI messages until input runs out or the app lags."""
        conn = self.conn
        assert conn is not None
        receive = self.receive
        while True:
            if receive.backlogged:
                self._backlogged = True
                if self.flow is not None:
                    self.flow.pause_reading()
                break
            event = conn.next_event()
            if event is None:
                break
            if type(event) is MessageReceived:
                if self._rec is not None:
                    self._rec.ws_messages_in += 1
                data = event.data
                if isinstance(data, str):
                    receive.push({"type": "websocket.receive", "text": data}, len(data))
                else:
                    receive.push({"type": "websocket.receive", "bytes": data}, len(data))
            elif type(event) is PongReceived:
                self._on_pong()
            elif type(event) is Closed:
                self._on_closed(event)
                return
        out = conn.data_to_send()
        if out:
            self._write(out)

    def _on_drain(self) -> None:
        """The app consumed a pending message: parse more if we had stopped."""
        if self._backlogged and not self.receive.backlogged:
            self._backlogged = False
            if self.conn is not None and not self._lost:
                self._process()
                if not self._backlogged and self.flow is not None:
                    self.flow.resume_reading()

    def _on_closed(self, event: Closed) -> None:
        conn = self.conn
        transport = self.transport
        assert conn is not None and transport is not None
        self._cancel_timer()
        out = conn.data_to_send()  # our Close reply, or the Close frame of a failure
        if out:
            self._write(out)
        self._deliver_disconnect(event.code, event.reason)
        if event.failed and transport.can_write_eof():
            # Failing the connection (RFC 6455 §7.1.7): half-close so the peer reads our Close
            # and then EOF, and keep draining its input until it hangs up.  Closing outright
            # while it is still sending could make the kernel reset the connection and lose
            # the Close frame.  The close timer bounds the wait.
            transport.write_eof()
            self._set_timer(self._close_timeout, self._on_close_timeout)
        else:
            # The closing handshake is complete: the server closes TCP first (§7.1.1).
            self._close_transport()

    def eof_received(self) -> bool | None:
        # The peer half-closed: nothing more to read, so close our side too.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._cancel_timer()
        self.server_state.remove_connection(self)
        if self.flow is not None:
            self.flow.connection_lost()
        closed = self.conn.connection_lost() if self.conn is not None else None
        # §7.1.5: no Close frame was received → 1006 (abnormal closure).
        self._deliver_disconnect(closed.code if closed is not None else CLOSE_ABNORMAL, "")

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.pause_writing()
        if self.conn is not None:
            self.conn.hold_pongs = True  # the peer is not reading: don't pile up pongs

    def resume_writing(self) -> None:
        if self.flow is not None:
            self.flow.resume_writing()
        conn = self.conn
        if conn is not None:
            conn.hold_pongs = False
            out = conn.owed_pong()
            if out:
                self._write(out)

    def _deliver_disconnect(self, code: int, reason: str) -> None:
        if not self._disconnected:
            self._disconnected = True
            if self._accepted and self._rec is not None:
                self._rec.ws_closed(code)
            self._access.websocket_closed(code)
            self.receive.push({"type": "websocket.disconnect", "code": code, "reason": reason})

    def _start_close(self, code: int, reason: str) -> None:
        conn = self.conn
        assert conn is not None
        out = conn.close(code, reason)
        if out:
            self._write(out)
            self._set_timer(self._close_timeout, self._on_close_timeout)

    # ----------------------------------------------------------------- graceful shutdown
    def shutdown(self) -> None:
        """Server stopping: close with 1001 and tell the app right away (contract 2)."""
        conn = self.conn
        transport = self.transport
        if transport is None:
            return
        if conn is None:
            transport.close()
            return
        if conn.state is State.CONNECTING:
            self._write(conn.deny(503, self._default_headers()))
            self._log(503)
            self._cancel_timer()
            transport.close()
            self._deliver_disconnect(CLOSE_GOING_AWAY, "server shutting down")
        elif conn.state is State.OPEN:
            self._start_close(CLOSE_GOING_AWAY, "server shutting down")
            self._deliver_disconnect(CLOSE_GOING_AWAY, "server shutting down")
        elif conn.state is State.CLOSED and not transport.is_closing():
            transport.close()
        # DENYING finishes its response; CLOSING already waits for the peer's Close.

    def abort(self) -> None:
        """Hard stop after the grace period."""
        if self.transport is not None:
            self.transport.abort()

    # ----------------------------------------------------------------- the one timer
    def _set_timer(self, delay: float, callback: Any) -> None:
        self._timer.arm(delay, callback)

    def _cancel_timer(self) -> None:
        self._timer.cancel()

    def _on_connect_timeout(self) -> None:
        """The app neither accepted nor refused within ``ws_connect_timeout``.

        We refuse with 403, as if the app had closed before accepting, and cancel the app.
        """
        conn = self.conn
        transport = self.transport
        if conn is None or transport is None:
            return
        if conn.state is State.CONNECTING:
            self._write(conn.deny(403, self._default_headers()))
            self._log(403)
        elif conn.state is not State.DENYING:
            return
        self._close_transport()
        self._deliver_disconnect(CLOSE_ABNORMAL, "")
        if self.task is not None:
            self.task.cancel()

    def _on_ping_timer(self) -> None:
        conn = self.conn
        if conn is None or conn.state is not State.OPEN:
            return
        self._write(conn.ping(b""))
        timeout = self.config.ws_ping_timeout
        if timeout is not None:
            self._awaiting_pong = True
            self._set_timer(timeout, self._on_ping_timeout)
        elif self.config.ws_ping_interval is not None:
            self._set_timer(self.config.ws_ping_interval, self._on_ping_timer)

    def _on_pong(self) -> None:
        if self._awaiting_pong:
            self._awaiting_pong = False
            conn = self.conn
            if conn is None or conn.state is not State.OPEN:
                return  # closing: the one timer now holds the close deadline, keep it
            interval = self.config.ws_ping_interval
            if interval is not None:
                self._set_timer(interval, self._on_ping_timer)

    def _on_ping_timeout(self) -> None:
        conn = self.conn
        transport = self.transport
        if conn is None or transport is None or conn.state is not State.OPEN:
            return
        if self.flow is not None and self.flow.read_paused:
            # We stopped reading (the app lags), so the pong may be sitting unread: not the
            # peer's fault.  Check again later.
            timeout = self.config.ws_ping_timeout
            assert timeout is not None
            self._set_timer(timeout, self._on_ping_timeout)
            return
        self._awaiting_pong = False
        closed = conn.fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        out = conn.data_to_send()
        if out:
            self._write(out)
        self._deliver_disconnect(closed.code, closed.reason)
        self._close_transport()

    def _on_close_timeout(self) -> None:
        """The peer never answered our Close (or never hung up after a failure)."""
        if self.transport is not None:
            self.transport.abort()
