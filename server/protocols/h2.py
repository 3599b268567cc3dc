"""``H2Protocol``: the asyncio glue between a transport and ``server.sansio.h2``.

One protocol per HTTP/2 connection, one ``Stream`` (ASGI ``receive``/``send``) and one task per
request stream; RFC 8441 WebSocket streams are ``WebSocketStream`` (server.protocols.h2_ws).
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
import os
from typing import Any, Final, cast
from urllib.parse import quote

from h2.errors import ErrorCodes

from server.access_log import AccessLog
from server.config import Config
from server.datecache import date_line
from server.metrics import recorder as _metrics
from server.protocols.common import (
    ConnectionTimer,
    PulledReceive,
    log_access,
    server_line,
    start_task,
)
from server.protocols.flow import FlowControl
from server.sansio.h2 import (
    Body,
    BodyEnd,
    Failed,
    GoingAway,
    H2Head,
    H2Server,
    Refused,
    Request,
    Reset,
    WindowOpened,
    field_pairs,
    response_headers,
    trailer_fields,
)
from server.sansio.request import RequestHead
from server.sansio.response import ASGIProtocolError
from server.sansio.scope import ConnectionInfo, http_scope, split_target, websocket_scope
from server.sansio.ws_errors import ClientDisconnected
from server.state import ServerState
from server.types import ASGIApp, Message

logger = logging.getLogger("server.http")

# Read size for http.response.pathsend / zerocopysend: each piece still goes out in DATA frames
# of the client's maximum frame size, within its flow-control windows.
FILE_CHUNK: Final = 256 * 1024

_DISCONNECT: Final = {"type": "http.disconnect"}
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
    old.closed = True
    old._timer.cancel()  # its request-head deadline (a ConnectionTimer)
    old.state.remove_connection(old)
    proto = H2Protocol(old.config, old.app, old.state, old.loop)
    transport.set_protocol(proto)
    proto.connection_made(transport)
    if data:
        proto.data_received(data)


class FlowStream:
    """What every stream shares: its id, its task, and sending within flow-control windows."""

    __slots__ = ("_window_waiter", "disconnected", "proto", "scope", "stream_id", "task")

    def __init__(self, proto: H2Protocol, stream_id: int, scope: dict[str, Any]) -> None:
        self.proto = proto
        self.stream_id = stream_id
        self.scope = scope
        self.disconnected = False
        self._window_waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def lost(self) -> None:
        raise NotImplementedError

    def app_failed(self) -> None:
        raise NotImplementedError

    def app_returned(self) -> None:
        raise NotImplementedError

    def shutdown_hint(self) -> None:
        raise NotImplementedError

    def feed(self, data: bytes, flow: int) -> None:
        raise NotImplementedError

    def end_of_request(self) -> None:
        raise NotImplementedError

    async def send(self, message: Message) -> None:
        raise NotImplementedError

    async def __call__(self) -> Message:
        raise NotImplementedError

    def window_changed(self) -> None:
        fut = self._window_waiter
        if fut is not None:
            self._window_waiter = None
            if not fut.done():
                fut.set_result(None)

    async def _data(self, data: Any, end_stream: bool) -> None:
        """Send ``data`` within the flow-control windows, waiting for them to open."""
        proto = self.proto
        h2conn = proto.h2
        view = memoryview(data) if data else memoryview(b"")
        while True:
            sent = h2conn.send_data(self.stream_id, view, end_stream)
            if sent < 0:
                self.lost()
                proto.flush()
                return
            view = view[sent:]
            proto.flush()
            if not view:
                break
            # The window is empty (RFC 9113 section 6.9): wait for WINDOW_UPDATE, bounded so
            # a client cannot hold the stream (and its application) forever.
            if not await self._wait_window():
                if self.disconnected:
                    return  # reset by the client (or the connection went) meanwhile
                logger.debug("stream %d: send window stayed closed, resetting", self.stream_id)
                h2conn.reset(self.stream_id, ErrorCodes.CANCEL)
                self.lost()
                proto.flush()
                return
        if proto.flow.write_paused:
            await proto.flow.drain()

    async def _wait_window(self) -> bool:
        if self.disconnected:
            return False
        fut: asyncio.Future[None] = self.proto.loop.create_future()
        self._window_waiter = fut
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.proto.config.http2_send_timeout)
        except TimeoutError:
            return False
        finally:
            self._window_waiter = None
        return not self.disconnected


class Stream(PulledReceive, FlowStream):
    """One request stream: ASGI ``receive`` (this object) and ``send``."""

    __slots__ = (
        "_chunks",
        "_final_sent",
        "_flow",
        "body_size",
        "complete",
        "content_length",
        "continue_pending",
        "head",
        "head_sent",
        "headers",
        "received",
        "request_done",
        "sent_length",
        "started",
        "started_at",
        "status",
        "trailers",
        "trailers_open",
        "waiter",
    )

    def __init__(
        self, proto: H2Protocol, stream_id: int, head: H2Head, scope: dict[str, Any]
    ) -> None:
        super().__init__(proto, stream_id, scope)
        self.head = head
        self._chunks: list[bytes] = []
        self._flow = 0  # flow-controlled bytes received and not yet acknowledged
        self.body_size = 0
        self.received = 0  # request body bytes so far (--limit-request-body)
        self.request_done = False
        self._final_sent = False
        self.continue_pending = head.expect_continue
        self.waiter: asyncio.Future[Message] | None = None
        # Response state.
        self.started = False
        self.started_at = 0.0  # with metrics on: server.metrics.recorder.clock() at the head
        self.head_sent = False
        self.complete = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.sent_length = 0
        self.trailers = False
        self.trailers_open = False

    # --- receive -----------------------------------------------------------------------
    def _take(self) -> Message | None:
        if self.complete:
            return dict(_DISCONNECT)
        if self.continue_pending:
            # RFC 9110 section 10.1.1 / RFC 9113 section 8.1: an interim 100 tells the client
            # to send the body; sent only once the app asks for the body.
            self.continue_pending = False
            if not self.head_sent and not self.request_done and not self.disconnected:
                self.proto.send_interim(self.stream_id)
        if self.body_size or (self.request_done and not self._final_sent):
            chunks = self._chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._chunks = []
            self.body_size = 0
            more = not self.request_done
            if not more:
                self._final_sent = True
            if self._flow:
                # The app took the bytes: open the window for as many (WINDOW_UPDATE).
                flow, self._flow = self._flow, 0
                self.proto.acknowledge(self.stream_id, flow)
            return {"type": "http.request", "body": body, "more_body": more}
        if self.disconnected:
            return dict(_DISCONNECT)
        return None

    def feed(self, data: bytes, flow: int) -> None:
        if self.request_done or self.complete:
            # Body after the response finished: nobody reads it, give the window back now.
            self.proto.acknowledge(self.stream_id, flow)
            return
        if not data:
            # Padding only: nothing for the app to consume, so nothing to wait for.
            if flow:
                self.proto.acknowledge(self.stream_id, flow)
            return
        self._chunks.append(data)
        self.body_size += len(data)
        self.received += len(data)
        limit = self.proto.config.limit_request_body
        if limit is not None and self.received > limit:
            self._body_too_large()
            return
        self._flow += flow
        if self.waiter is not None:
            self.wake()

    def _body_too_large(self) -> None:
        """--limit-request-body exceeded by a body without (or beyond) its content-length:
        413 if no response started yet, then the stream is reset (RFC 9113 section 8.1)."""
        proto = self.proto
        self.proto.acknowledge(self.stream_id, self._flow)
        self._flow = 0
        self._chunks = []
        self.body_size = 0
        if not self.head_sent and not self.complete:
            self.head_sent = True
            self.status = 413
            proto.respond_plain(self.stream_id, 413, "Request body too large", ended=False)
            self.complete = True
            proto.response_done(self)
        else:
            proto.h2.reset(self.stream_id, ErrorCodes.CANCEL)
        self.lost()
        proto.flush()

    def end_of_request(self) -> None:
        self.request_done = True
        if self.waiter is not None:
            self.wake()

    def lost(self) -> None:
        self.disconnected = True
        self.window_changed()
        if self.waiter is not None:
            self.wake()

    # --- send --------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        if self.disconnected:
            await asyncio.sleep(0)  # ASGI: sends after a disconnect are no-ops
            return
        kind = message.get("type")
        if kind == "http.response.body":
            await self._body(message.get("body", b""), bool(message.get("more_body", False)))
        elif kind == "http.response.start":
            if self.started:
                raise ASGIProtocolError("http.response.start sent twice")
            status = message.get("status")
            if type(status) is not int or not 200 <= status <= 999:
                raise ASGIProtocolError(f"http.response.start: invalid status {status!r}")
            self.headers, self.content_length = response_headers(
                status, message.get("headers"), self.proto.default_headers()
            )
            self.status = status
            self.trailers = bool(message.get("trailers", False))
            self.started = True
        elif kind == "http.response.trailers":
            if not self.trailers:
                raise ASGIProtocolError("http.response.trailers without trailers=True in start")
            if not self.trailers_open:
                raise ASGIProtocolError("http.response.trailers before the last body message")
            fields = trailer_fields(message.get("headers", ()))
            more = bool(message.get("more_trailers", False))
            # One HEADERS frame closes the stream (RFC 9113 section 8.1): fields sent with
            # more_trailers are held until the last trailers message.
            self.headers.extend(fields)
            if not more:
                self.trailers_open = False
                proto = self.proto
                if proto.h2.send_headers(self.stream_id, self.headers, end_stream=True):
                    self._finish()
                else:
                    self.lost()
                proto.flush()
        elif kind == "http.response.pathsend":
            await self._file(message["path"], None)
        elif kind == "http.response.zerocopysend":
            await self._file(None, message)
        else:
            raise ASGIProtocolError(f"unexpected ASGI message type {kind!r} for http")

    def _no_body(self) -> bool:
        status = self.status
        return self.head.method == b"HEAD" or status == 204 or status == 304

    async def _body(self, body: Any, more_body: bool) -> None:
        if not self.started:
            raise ASGIProtocolError("http.response.body before http.response.start")
        if self.complete or self.trailers_open:
            raise ASGIProtocolError("http.response.body after the response finished")
        if type(body) is not bytes and not isinstance(body, bytearray | memoryview):
            raise ASGIProtocolError(f"http.response.body: body must be bytes, not {type(body)}")
        size = len(body)
        limit = self.content_length
        if limit is not None and self.sent_length + size > limit and not self._no_body():
            raise ASGIProtocolError("response body longer than its Content-Length")
        proto = self.proto
        h2conn = proto.h2
        if self._no_body():
            # No DATA ever (RFC 9110 sections 9.3.2, 15.3.5, 15.4.5): the HEADERS frame ends
            # the stream at once; the body messages are consumed until the last one.
            if not self.head_sent:
                self.head_sent = True
                if self.head.method == b"HEAD" and limit is None and not more_body and size:
                    self.headers.append((b"content-length", b"%d" % size))
                if not h2conn.send_headers(self.stream_id, self.headers, end_stream=True):
                    self.lost()
                proto.flush()
            if not more_body and not self.disconnected:
                self._finish()
            return
        ends = not more_body and not self.trailers
        if not more_body and limit is not None and self.sent_length + size != limit:
            # The client would wait for bytes that never come (or count the stream as
            # malformed, RFC 9113 section 8.1.1): it must see the response fail instead.
            logger.error("ASGI application sent less than its Content-Length")
            h2conn.reset(self.stream_id, ErrorCodes.INTERNAL_ERROR)
            self.lost()
            proto.flush()
            return
        if not self.head_sent:
            self.head_sent = True
            if not more_body and limit is None and not self.trailers:
                self.headers.append((b"content-length", b"%d" % size))
            if not h2conn.send_headers(self.stream_id, self.headers, end_stream=ends and not size):
                self.lost()
                proto.flush()
                return
            if self.trailers:
                self.headers = []  # now collects the trailer fields
            if ends and not size:
                self._finish()
                proto.flush()
                return
        self.sent_length += size
        await self._data(body, ends)
        if not more_body and not self.disconnected:
            if self.trailers:
                self.trailers_open = True
            else:
                self._finish()

    def _finish(self) -> None:
        self.complete = True
        self.proto.response_done(self)

    async def _file(self, path: str | None, message: Message | None) -> None:
        """``http.response.pathsend`` (whole file) or ``zerocopysend`` (a piece of one)."""
        if not self.started:
            raise ASGIProtocolError("http.response.pathsend before http.response.start")
        if path is not None:
            if self.head_sent or self.complete:
                raise ASGIProtocolError("http.response.pathsend after body was sent")
            # Opening is a cheap syscall; the bulk I/O below yields to the loop.
            with open(path, "rb") as file:  # noqa: ASYNC230
                size = os.fstat(file.fileno()).st_size
                if self.content_length is None:
                    self.content_length = size
                    self.headers.append((b"content-length", b"%d" % size))
                self.trailers = False
                await self._copy(file.fileno(), 0, size, False)
            return
        assert message is not None
        fd = message["file"].fileno()
        offset = message.get("offset")
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        count = message.get("count")
        if count is None:
            count = max(os.fstat(fd).st_size - offset, 0)
        await self._copy(fd, offset, count, bool(message.get("more_body", False)))

    async def _copy(self, fd: int, offset: int, count: int, more_body: bool) -> None:
        if count == 0:
            await self._body(b"", more_body)
            return
        sent = 0
        while sent < count and not self.disconnected:
            chunk = os.pread(fd, min(FILE_CHUNK, count - sent), offset + sent)
            if not chunk:
                break
            sent += len(chunk)
            await self._body(chunk, more_body or sent < count)
        if sent < count and not self.disconnected:
            # The file was shorter than promised: the response cannot be completed.
            self.proto.h2.reset(self.stream_id, ErrorCodes.INTERNAL_ERROR)
            self.lost()
            self.proto.flush()

    # --- end of the application -----------------------------------------------------------
    def app_failed(self) -> None:
        """The app raised, was cancelled, or returned without finishing the response."""
        if self.complete or self.disconnected:
            return
        proto = self.proto
        self.disconnected = True
        if not self.head_sent:
            body = b"Internal Server Error\n"
            headers = [
                (b":status", b"500"),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                *proto.default_headers(),
            ]
            if proto.h2.send_headers(self.stream_id, headers):
                proto.h2.send_data(self.stream_id, body, True)
            self.status = 500
            self.complete = True
            proto.response_done(self)
        else:
            # Too late for a status: the reset tells the client the response is incomplete.
            proto.h2.reset(self.stream_id, ErrorCodes.INTERNAL_ERROR)
        proto.flush()

    def app_returned(self) -> None:
        if not self.complete and not self.disconnected:
            if self.head_sent:
                logger.error("ASGI application returned without completing the response")
            else:
                logger.error("ASGI application returned without sending a response")
            self.app_failed()
        elif not self.request_done and not self.disconnected:
            # RFC 9113 section 8.1: the response is complete but the client is still sending
            # a body nobody will read; NO_ERROR asks it to stop.
            self.proto.h2.reset(self.stream_id, ErrorCodes.NO_ERROR)
            self.proto.flush()

    def shutdown_hint(self) -> None:
        """Nothing to do for an HTTP stream: it finishes within the grace time."""


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
        config = self.config
        self.info = ConnectionInfo(
            peername=transport.get_extra_info("peername"),
            sockname=transport.get_extra_info("sockname"),
            secure=transport.get_extra_info("sslcontext") is not None,
            root_path=config.root_path,
            proxy_headers=config.proxy_headers,
            forwarded_allow_ips=config.forwarded_allow_ips,
        )
        self.state.add_connection(self)
        self.h2.initiate()
        self.flush()
        if self.state.shutting_down:
            self.shutdown()
        else:
            self._arm_idle(config.timeout_request_header)

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
                self.flush()
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
            extensions: dict[str, Any] = {
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
