"""``RequestCycle``: one HTTP/1.1 request/response exchange on an ``HttpProtocol`` connection.

The cycle is the ASGI ``receive`` handed to the app (``await cycle()``, or ``arm(fut)`` for the
direct-feed contract, see docs/direct-feed.md) and its ``send``, including the file-body
extensions ``http.response.pathsend`` and ``http.response.zerocopysend``.  The connection feeds
it from ``data_received`` (``feed``, ``end_of_request``, ``lost``); it writes through the
connection's transport and tells the connection when the response is complete
(``HttpProtocol.response_done``).  The connection itself lives in ``server.protocols.http``.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Final, cast

from server.protocols.common import PulledReceive
from server.sansio.request import RequestHead
from server.sansio.response import ASGIProtocolError, ResponseState
from server.types import (
    HTTPReceiveEvent,
    HTTPResponseBodyEvent,
    HTTPResponsePathsendEvent,
    HTTPResponseTrailersEvent,
    HTTPResponseZerocopysendEvent,
    HTTPScope,
    SendEvent,
)
from server.writer import write_parts

if TYPE_CHECKING:
    from server.protocols.http import HttpProtocol

# Chunk size for the read-and-write fallback of pathsend/zerocopysend (no sendfile).
FILE_CHUNK: Final = 256 * 1024

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class RequestCycle(PulledReceive):
    """One request/response exchange: ASGI ``receive`` (this object) and ``send``."""

    __slots__ = (
        "_chunks",
        "_final_sent",
        "body_size",
        "continue_pending",
        "disconnected",
        "head",
        "proto",
        "request_done",
        "response",
        "scope",
        "task",
        "waiter",
    )

    def __init__(
        self, proto: HttpProtocol, scope: HTTPScope, head: RequestHead, response: ResponseState
    ) -> None:
        self.proto = proto
        self.scope = scope
        self.head = head
        self.response = response
        self._chunks: list[bytes | bytearray] = []
        self.body_size = 0
        self.request_done = False
        self._final_sent = False
        self.disconnected = False
        self.continue_pending = head.expect_continue
        self.waiter: asyncio.Future[HTTPReceiveEvent] | None = None
        self.task: asyncio.Task[None] | None = None

    # --- receive -----------------------------------------------------------------------
    def _take(self) -> HTTPReceiveEvent | None:
        """The next message for the app if one is ready (consuming it), else None."""
        if self.response.complete:
            # ASGI: http.disconnect once the response is sent (or the client went away).
            return {"type": "http.disconnect"}
        if self.continue_pending:
            # RFC 9110 section 10.1.1: the client waits for 100 before sending the body; we only
            # send it once the app shows interest in the body.
            self.continue_pending = False
            if not self.response.head_sent and not self.request_done and not self.disconnected:
                self.proto.write(_CONTINUE)
                self.proto.body_due()
        if self.body_size or (self.request_done and not self._final_sent):
            # Body that arrived before a disconnect is still delivered first: no lost data.
            chunks = self._chunks
            body = bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
            self._chunks = []
            self.body_size = 0
            more = not self.request_done
            if not more:
                self._final_sent = True
            if self.proto.body_paused:
                self.proto.resume_body()
            return {"type": "http.request", "body": body, "more_body": more}
        if self.disconnected:
            return {"type": "http.disconnect"}
        return None

    def feed(self, data: bytes | bytearray) -> None:
        self._chunks.append(data)
        self.body_size += len(data)
        if self.waiter is not None:
            self.wake()

    def end_of_request(self) -> None:
        self.request_done = True
        if self.waiter is not None:
            self.wake()

    def lost(self) -> None:
        self.disconnected = True
        if self.waiter is not None:
            self.wake()

    # --- send --------------------------------------------------------------------------
    async def send(self, message: SendEvent) -> None:
        if self.disconnected:
            # ASGI: sends after the client went away are no-ops.  Still yield to the loop: an
            # app streaming in a tight loop would otherwise never let anything else run.
            await asyncio.sleep(0)
            return
        kind = message.get("type")
        response = self.response
        proto = self.proto
        if kind == "http.response.body":
            # Named for the type checker only (typing.cast would cost a call per message, and
            # body messages are the hot path); the same below for zerocopysend.
            body: HTTPResponseBodyEvent = message  # type: ignore[assignment]
            parts = response.body(body.get("body", b""), body.get("more_body", False))
            if parts:
                sent = write_parts(proto.transport, parts)
                if proto.traffic is not None:
                    proto.traffic.bytes_out += sent
            if response.complete:
                proto.response_done(self)
            elif proto.flow.write_paused:
                await proto.flow.drain()
        elif kind == "http.response.start":
            response.start(message, proto.default_headers())
            if self.continue_pending and not self.request_done and not self.body_size:
                # A final answer without asking for the body: the client will not send it,
                # so this connection ends with the response; say so (RFC 9110 section 10.1.1).
                response.keep_alive = False
        elif kind == "http.response.trailers":
            trailers = cast(HTTPResponseTrailersEvent, message)
            parts = response.send_trailers(
                trailers.get("headers", ()), trailers.get("more_trailers", False)
            )
            if parts:
                proto.write_parts(parts)
            if response.complete:
                proto.response_done(self)
        elif kind == "http.response.pathsend":
            await self.send_file(cast(HTTPResponsePathsendEvent, message)["path"])
        elif kind == "http.response.zerocopysend":
            zerocopy: HTTPResponseZerocopysendEvent = message  # type: ignore[assignment]
            await self.send_zerocopy(zerocopy)
        else:
            raise ASGIProtocolError(f"unexpected ASGI message type {kind!r} for http")

    # --- http.response.pathsend --------------------------------------------------------
    async def send_file(self, path: str) -> None:
        response = self.response
        # Opening is a cheap syscall; the bulk I/O below yields to the loop (drain/sendfile).
        with open(path, "rb") as file:  # noqa: ASYNC230
            size = os.fstat(file.fileno()).st_size
            head, count = response.file_head(size)
            self.proto.write(head)
            sent = 0
            if count:
                sent = await self._sendfile(file, count)
                if self.proto.traffic is not None:
                    self.proto.traffic.bytes_out += sent
            if sent != count:
                response.keep_alive = False
        if not self.disconnected:
            self.proto.response_done(self)

    async def send_zerocopy(self, message: HTTPResponseZerocopysendEvent) -> None:
        """``http.response.zerocopysend`` (ASGI extension): body bytes from a file object."""
        response = self.response
        file = message["file"]
        fd = file.fileno()
        offset = message.get("offset")
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)  # "from the current position"
        count = message.get("count")
        if count is None:
            count = max(os.fstat(fd).st_size - offset, 0)
        more_body = bool(message.get("more_body", False))
        before, to_send, after = response.file_body(count, more_body)
        if before:
            self.proto.write_parts(before)
        sent = await self._sendfile(file, to_send, offset) if to_send else 0
        if self.proto.traffic is not None:
            self.proto.traffic.bytes_out += sent
        if sent != to_send:
            # The framing promised bytes that never came: the message is broken, the
            # connection cannot be reused and the client must see it end.
            if not self.disconnected:
                self.disconnected = True
                self.proto.close()
            return
        if after:
            self.proto.write_parts(after)
        if response.complete:
            self.proto.response_done(self)
        elif self.proto.flow.write_paused:
            await self.proto.flow.drain()

    async def _sendfile(self, file: Any, count: int, offset: int = 0) -> int:
        transport = self.proto.transport
        mode = getattr(transport, "_sendfile_compatible", None)
        # Zero-copy when the loop and transport can (plain TCP on the default asyncio loop);
        # uvloop and TLS transports take the read/write path below.
        if mode is not None and getattr(mode, "name", "") == "TRY_NATIVE":
            try:
                return await self.proto.loop.sendfile(
                    transport, file, offset, count, fallback=False
                )
            except (NotImplementedError, RuntimeError):
                pass  # SendfileNotAvailableError: use the fallback
            except OSError:
                self.lost()
                return 0
        fd = file.fileno()
        sent = 0
        while sent < count and not self.disconnected:
            chunk = os.pread(fd, min(FILE_CHUNK, count - sent), offset + sent)
            if not chunk:
                break
            transport.write(chunk)
            sent += len(chunk)
            if self.proto.flow.write_paused:
                await self.proto.flow.drain()
        return sent
