"""WebSocket over an HTTP/2 stream (RFC 8441): the ASGI ``websocket`` scope for an extended
CONNECT, with the same message rules and frame layer as WebSocket over HTTP/1.1.

The ASGI rules and the frames are ``server.sansio.ws_frames.WebSocketConnection`` unchanged: the
opening handshake differs (no Sec-WebSocket-Key/Accept, RFC 8441 section 5: a 2xx HEADERS frame
instead of a 101), the frames do not, so a Channels consumer cannot tell the two apart.  Frame
bytes travel in DATA frames within the stream's flow-control windows; the stream ends
(END_STREAM) once the closing handshake is done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from h2.errors import ErrorCodes

from server.protocols.common import ConnectionTimer
from server.protocols.h2_stream import FlowStream
from server.protocols.websocket import WebSocketReceive
from server.sansio.h2_head import H2Head
from server.sansio.h2_response import response_headers
from server.sansio.ws_errors import ASGIWebSocketError, ClientDisconnected
from server.sansio.ws_frames import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    Closed,
    MessageReceived,
    PongReceived,
    State,
    WebSocketConnection,
)
from server.sansio.ws_handshake import Handshake
from server.types import (
    SendEvent,
    WebSocketAcceptEvent,
    WebSocketReceiveEvent,
    WebSocketResponseBodyEvent,
    WebSocketResponseStartEvent,
    WebSocketScope,
)

if TYPE_CHECKING:
    from server.protocols.h2 import H2Protocol

logger = logging.getLogger("server.websocket")

# Fields of the HTTP/1.1 101 answer that have no place in an RFC 8441 response.
_HTTP11_ONLY = frozenset((b"upgrade", b"connection", b"sec-websocket-accept"))


def _comma_split(value: bytes) -> list[str]:
    return [part.strip().decode("latin-1") for part in value.split(b",") if part.strip()]


def _accept_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """The fields of the 101 head ``WebSocketConnection.accept`` built (subprotocol,
    permessage-deflate answer, the app's own headers), minus the HTTP/1.1 upgrade fields."""
    fields = []
    for line in head.split(b"\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name not in _HTTP11_ONLY:
            fields.append((name, value.strip()))
    return fields


class WebSocketStream(FlowStream):
    """One RFC 8441 WebSocket: ASGI ``receive`` (this object, through ``WebSocketReceive``)
    and ``send``."""

    __slots__ = (
        "_connect_timer",
        "_deny",
        "_end_after",
        "_ended",
        "_held",
        "_out",
        "_ping_timer",
        "_pong_due",
        "conn",
        "head",
        "receive",
    )

    def __init__(
        self, proto: H2Protocol, stream_id: int, head: H2Head, scope: WebSocketScope
    ) -> None:
        super().__init__(proto, stream_id, scope)
        self.head = head
        subprotocols: list[str] = []
        offers: list[str] = []
        for name, value in head.headers:
            if name == b"sec-websocket-protocol":
                subprotocols.extend(_comma_split(value))
            elif name == b"sec-websocket-extensions":
                offers.extend(_comma_split(value))
        config = proto.config
        self.conn = WebSocketConnection(
            Handshake(key=b"", subprotocols=subprotocols, extension_offers=offers),
            max_size=config.ws_max_size,
            per_message_deflate=config.ws_per_message_deflate,
        )
        scope["subprotocols"] = subprotocols
        scope["extensions"] = {"websocket.http.response": {}}
        self.receive = WebSocketReceive(proto.loop, self._on_drain)
        self.receive.push({"type": "websocket.connect"})
        self._out = bytearray()  # frame bytes waiting for send window
        self._held = 0  # flow-controlled bytes not yet acknowledged (app is behind)
        self._ended = False
        self._end_after = False  # end the stream once the queued frames are out
        self._deny: list[tuple[bytes, bytes]] | None = None
        # --ws-ping-interval/--ws-ping-timeout, as over HTTP/1.1: a peer that stopped
        # answering is found even while nobody sends anything.
        self._ping_timer = ConnectionTimer(proto.loop)
        self._pong_due = False
        # --ws-connect-timeout, as over HTTP/1.1: an app that neither accepts nor refuses.
        self._connect_timer: asyncio.TimerHandle | None = proto.loop.call_later(
            config.ws_connect_timeout, self._on_connect_timeout
        )

    def _on_connect_timeout(self) -> None:
        self._connect_timer = None
        conn = self.conn
        if self.disconnected or conn.state is not State.CONNECTING:
            return
        conn.app_message({"type": "websocket.close"})  # CONNECTING -> CLOSED
        self._plain(403)
        self.lost()
        if self.task is not None:
            self.task.cancel()

    # --- receive -----------------------------------------------------------------------
    async def __call__(self) -> WebSocketReceiveEvent:
        return await self.receive()

    def arm(self, fut: asyncio.Future[WebSocketReceiveEvent]) -> None:
        self.receive.arm(fut)

    def _on_drain(self) -> None:
        if self._held and not self.receive.backlogged:
            held, self._held = self._held, 0
            self.proto.acknowledge(self.stream_id, held)

    def feed(self, data: bytes, flow: int) -> None:
        conn = self.conn
        conn.receive_data(data)
        while True:
            event = conn.next_event()
            if event is None:
                break
            if type(event) is MessageReceived:
                payload = event.data
                if isinstance(payload, str):
                    self.receive.push({"type": "websocket.receive", "text": payload}, len(payload))
                else:
                    self.receive.push({"type": "websocket.receive", "bytes": payload}, len(payload))
            elif type(event) is PongReceived:
                if self._pong_due:
                    self._pong_due = False
                    interval = self.proto.config.ws_ping_interval
                    if interval is not None:
                        self._ping_timer.arm(interval, self._on_ping)
            elif type(event) is Closed:
                self.receive.push(
                    {"type": "websocket.disconnect", "code": event.code, "reason": event.reason}
                )
        self._queue(conn.data_to_send())
        # The window reopens as the app takes messages: a slow consumer stops the client.
        if self.receive.backlogged:
            self._held += flow
        else:
            self.proto.acknowledge(self.stream_id, flow)
        self._end_if_closed()

    def end_of_request(self) -> None:
        # The client ended its side without a Close frame: like a TCP FIN.
        self._lose()
        self._end_if_closed()

    def _on_ping(self) -> None:
        if self.disconnected or self.conn.state is not State.OPEN:
            return
        self._pong_due = True
        self._queue(self.conn.ping(b""))
        config = self.proto.config
        timeout = config.ws_ping_timeout
        interval = config.ws_ping_interval
        self._ping_timer.arm(timeout if timeout is not None else interval or 0.0, self._no_pong)

    def _no_pong(self) -> None:
        if not self._pong_due or self.disconnected:
            return
        if self.proto.config.ws_ping_timeout is None:
            self._on_ping()  # no timeout configured: just keep pinging
            return
        logger.debug("WebSocket stream %d: no pong in time, resetting", self.stream_id)
        self.proto.h2.reset(self.stream_id, ErrorCodes.CANCEL)
        self.lost()
        self.proto.flush()

    def _cancel_connect_timer(self) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def lost(self) -> None:
        self._cancel_connect_timer()
        self._ping_timer.cancel()
        self.disconnected = True
        self._lose()
        self.window_changed()

    def _lose(self) -> None:
        closed = self.conn.connection_lost()
        if closed is not None:
            self.receive.push({"type": "websocket.disconnect", "code": closed.code, "reason": ""})

    # --- send --------------------------------------------------------------------------
    def window_changed(self) -> None:
        super().window_changed()
        if self._out:
            self._pump()

    def _queue(self, frames: Any) -> None:
        if not frames:
            return
        if type(frames) is tuple:
            for piece in frames:
                self._out += piece
        else:
            self._out += frames
        self._pump()

    def _pump(self) -> None:
        proto = self.proto
        if self.disconnected or self._ended:
            self._out.clear()
        elif self._out:
            sent = proto.h2.send_data(self.stream_id, bytes(self._out), False)
            if sent < 0:
                self._out.clear()
                self.lost()
            else:
                del self._out[:sent]
            proto.flush()
        if not self._out:
            self._end_if_closed()

    async def _drain(self) -> None:
        """Wait until the queued frames went out (bounded like any HTTP/2 send)."""
        while self._out and not self.disconnected:
            if not await self._wait_window():
                if self.disconnected:
                    return
                logger.debug("stream %d: send window stayed closed, resetting", self.stream_id)
                self.proto.h2.reset(self.stream_id, ErrorCodes.CANCEL)
                self.lost()
                self.proto.flush()
                return
            self._pump()
        if self.proto.flow.write_paused:
            await self.proto.flow.drain()

    def _end_if_closed(self) -> None:
        if (
            (self.conn.state is State.CLOSED or self._end_after)
            and not self._out
            and not self._ended
        ):
            self._ended = True
            self._ping_timer.cancel()
            if not self.disconnected:
                self.proto.h2.end_stream(self.stream_id)
                self.proto.flush()

    async def send(self, message: SendEvent) -> None:
        conn = self.conn
        if self.disconnected and conn.state is State.CLOSED:
            raise ClientDisconnected("WebSocket connection is closed")
        mtype = message.get("type") if isinstance(message, dict) else None
        state = conn.state
        if state is State.CONNECTING:
            if mtype == "websocket.accept":
                head = conn.accept(cast(WebSocketAcceptEvent, message))
                self._cancel_connect_timer()
                interval = self.proto.config.ws_ping_interval
                if interval is not None:
                    self._ping_timer.arm(interval, self._on_ping)
                fields = [(b":status", b"200"), *_accept_fields(head)]
                self._headers(fields, end_stream=False)
                self.proto.log_access(self.head, 200)
                # Frames that arrived with the CONNECT (or before the accept) were replayed.
                self.feed(b"", 0)
                return
            if mtype == "websocket.close":
                conn.app_message(message)  # validates; CONNECTING -> CLOSED
                self._plain(403)
                return
            if mtype == "websocket.http.response.start":
                start = cast(WebSocketResponseStartEvent, message)
                conn.response_start(start)  # validates; -> DENYING
                self._deny, _length = response_headers(
                    start["status"], start.get("headers"), self.proto.default_headers()
                )
                return
        elif state is State.DENYING and mtype == "websocket.http.response.body":
            denial = cast(WebSocketResponseBodyEvent, message)
            more = bool(denial.get("more_body", False))
            conn.response_body(denial)  # validates; CLOSED at the end
            body = bytes(denial.get("body", b""))
            if self._deny is not None:
                fields, self._deny = self._deny, None
                self._headers(fields, end_stream=not more and not body)
            if body:
                self._out += body
                self._pump()
                await self._drain()
            if not more and body and not self.disconnected:
                self._ended = True
                self.proto.h2.end_stream(self.stream_id)
                self.proto.flush()
            return
        out = conn.app_message(message)  # raises for invalid or out-of-order messages
        self._queue(out)
        await self._drain()

    def _headers(self, fields: list[tuple[bytes, bytes]], *, end_stream: bool) -> None:
        proto = self.proto
        have = {name for name, _ in fields}
        extra = [pair for pair in proto.default_headers() if pair[0] not in have]
        if not proto.h2.send_headers(self.stream_id, fields + extra, end_stream=end_stream):
            self.lost()
        if end_stream:
            self._ended = True
        proto.flush()

    def _plain(self, status: int) -> None:
        self.proto.log_access(self.head, status)
        self._headers([(b":status", b"%d" % status), (b"content-length", b"0")], end_stream=True)

    # --- end of the application ----------------------------------------------------------
    def _finish(self, code: int, status: int) -> None:
        conn = self.conn
        if self.disconnected:
            return
        if conn.state is State.CONNECTING:
            conn.app_message({"type": "websocket.close"})
            self._plain(status)
        elif conn.state is State.DENYING:
            conn.abort_denial()
            if self._deny is not None:
                self._deny = None
                self._plain(500)
            else:
                self.proto.h2.reset(self.stream_id, ErrorCodes.INTERNAL_ERROR)
                self.proto.flush()
        elif conn.state is State.OPEN:
            # Our Close, then END_STREAM: the stream stays half-closed for the client's Close,
            # which nobody needs to read any more.
            self._end_after = True
            self._queue(conn.close(code))
        else:  # CLOSING (our Close is out) or CLOSED
            self._end_after = True
            self._end_if_closed()

    def app_returned(self) -> None:
        self._cancel_connect_timer()
        self._finish(CLOSE_NORMAL, 403)

    def app_failed(self) -> None:
        self._cancel_connect_timer()
        self._finish(CLOSE_INTERNAL_ERROR, 500)

    def shutdown_hint(self) -> None:
        if self.conn.state is State.OPEN:
            self._queue(self.conn.close(CLOSE_GOING_AWAY))


__all__ = ["ASGIWebSocketError", "WebSocketStream"]
