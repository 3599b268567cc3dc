"""The ASGI side of HTTP/2 request streams: ``FlowStream`` (what every stream shares: sending
within the flow-control windows) and ``Stream`` (one request: ASGI ``receive`` and ``send``,
response rules, request body flow control and deadline).  ``server.protocols.h2`` holds the
connection; RFC 8441 WebSocket streams are ``server.protocols.h2_ws``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Final

from h2.errors import ErrorCodes

from server.protocols.common import ConnectionTimer, PulledReceive
from server.sansio.h2 import STREAM_WINDOW
from server.sansio.h2_head import H2Head
from server.sansio.h2_response import response_headers, trailer_fields
from server.sansio.response import ASGIProtocolError
from server.types import (
    HTTPReceiveEvent,
    HTTPResponsePathsendEvent,
    HTTPResponseZerocopysendEvent,
    HTTPScope,
    SendEvent,
    WebSocketReceiveEvent,
    WebSocketScope,
)

if TYPE_CHECKING:
    from server.protocols.h2 import H2Protocol

logger = logging.getLogger("server.http")

# Read size for http.response.pathsend / zerocopysend: each piece still goes out in DATA frames
# of the client's maximum frame size, within its flow-control windows.
FILE_CHUNK: Final = 256 * 1024


class FlowStream:
    """What every stream shares: its id, its task, and sending within flow-control windows."""

    __slots__ = ("_window_waiter", "disconnected", "proto", "scope", "stream_id", "task")

    def __init__(
        self, proto: H2Protocol, stream_id: int, scope: HTTPScope | WebSocketScope
    ) -> None:
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

    async def send(self, message: SendEvent) -> None:
        raise NotImplementedError

    async def __call__(self) -> HTTPReceiveEvent | WebSocketReceiveEvent:
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
        "_deadline",
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

    def __init__(self, proto: H2Protocol, stream_id: int, head: H2Head, scope: HTTPScope) -> None:
        super().__init__(proto, stream_id, scope)
        self.head = head
        self._chunks: list[bytes] = []
        self._flow = 0  # flow-controlled bytes received and not yet acknowledged
        self.body_size = 0
        self.received = 0  # request body bytes so far (--limit-request-body)
        self.request_done = False
        self._final_sent = False
        self.continue_pending = head.expect_continue
        self.waiter: asyncio.Future[HTTPReceiveEvent] | None = None
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
        self._deadline: ConnectionTimer | None = None  # --timeout-request-body, when due

    # --- receive -----------------------------------------------------------------------
    def _take(self) -> HTTPReceiveEvent | None:
        if self.complete:
            return {"type": "http.disconnect"}
        if self.continue_pending:
            # RFC 9110 section 10.1.1 / RFC 9113 section 8.1: an interim 100 tells the client
            # to send the body; sent only once the app asks for the body.
            self.continue_pending = False
            if not self.head_sent and not self.request_done and not self.disconnected:
                self.proto.send_interim(self.stream_id)
                self.watch_body()  # the client was asked for the body: now it is due
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
            if more:
                self.watch_body()
            return {"type": "http.request", "body": body, "more_body": more}
        if self.disconnected:
            return {"type": "http.disconnect"}
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
        if self._deadline is not None:
            self.watch_body()  # progress: the deadline moves (or stops while the app is behind)
        if self.waiter is not None:
            self.wake()

    def watch_body(self) -> None:
        """Keep the --timeout-request-body deadline while the body is due from the client: not
        yet complete, no 100-continue unanswered (the client waits for us then), and less
        than a stream window unread (with a full window the app is behind, not the client,
        and flow control holds the client back)."""
        if (
            self.request_done
            or self.continue_pending
            or self.disconnected
            or self.complete
            or self.body_size >= STREAM_WINDOW
        ):
            if self._deadline is not None:
                self._deadline.cancel()
            return
        timer = self._deadline
        if timer is None:
            timer = self._deadline = ConnectionTimer(self.proto.loop)
        timer.arm(self.proto.config.timeout_request_body, self._body_timeout)

    def _body_timeout(self) -> None:
        """The body made no progress for --timeout-request-body (as HTTP/1.1): the app gets
        http.disconnect, the client a 408 if no response started, else the stream is reset;
        the connection and its other streams go on."""
        if self.request_done or self.disconnected:
            return
        logger.debug("stream %d: request body timeout", self.stream_id)
        self._give_up(408, "Request Timeout")

    def _body_too_large(self) -> None:
        """--limit-request-body exceeded by a body without (or beyond) its content-length:
        413 if no response started yet, then the stream is reset (RFC 9113 section 8.1)."""
        self._give_up(413, "Request body too large")

    def _give_up(self, status: int, reason: str) -> None:
        """Stop reading the request: ``status`` if no response started (and NO_ERROR asks the
        client to stop sending, RFC 9113 section 8.1), else RST_STREAM CANCEL."""
        proto = self.proto
        # The unread body is dropped: its bytes go back to the connection window.
        proto.acknowledge(self.stream_id, self._flow)
        self._flow = 0
        self._chunks = []
        self.body_size = 0
        if not self.head_sent and not self.complete:
            self.head_sent = True
            self.status = status
            proto.respond_plain(self.stream_id, status, reason, ended=False)
            self.complete = True
            proto.response_done(self)
        else:
            proto.h2.reset(self.stream_id, ErrorCodes.CANCEL)
        self.lost()
        proto.flush()

    def end_of_request(self) -> None:
        self.request_done = True
        if self._deadline is not None:
            self._deadline.cancel()
        if self.waiter is not None:
            self.wake()

    def lost(self) -> None:
        self.disconnected = True
        if self._deadline is not None:
            self._deadline.cancel()
        self.window_changed()
        if self.waiter is not None:
            self.wake()

    # --- send --------------------------------------------------------------------------
    async def send(self, message: SendEvent) -> None:
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
            pathsend: HTTPResponsePathsendEvent = message  # type: ignore[assignment]
            await self._file(pathsend["path"], None)
        elif kind == "http.response.zerocopysend":
            zerocopy: HTTPResponseZerocopysendEvent = message  # type: ignore[assignment]
            await self._file(None, zerocopy)
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
        if self._deadline is not None:
            self._deadline.cancel()
        self.proto.response_done(self)

    async def _file(
        self, path: str | None, message: HTTPResponseZerocopysendEvent | None
    ) -> None:
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
        if self._deadline is not None:
            self._deadline.cancel()  # nobody reads the body any more
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
        if self._deadline is not None:
            self._deadline.cancel()
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
