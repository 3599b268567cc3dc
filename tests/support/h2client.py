"""An HTTP/2 client on a raw socket, driven by the ``h2`` library, for tests that need to send
exactly the frames they mean (attacks, flow control, RFC 8441) rather than what httpx sends.

    async with H2Client.connect(srv.port) as client:
        sid = client.request("GET", "/")
        response = await client.response(sid)

``raw(bytes)`` writes bytes past the h2 state machine (hand-made frames); ``events()`` waits
for the next batch of h2 events; ``closed`` tells whether the server hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

WAIT = 10.0


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame (RFC 9113 section 4.1), built by hand."""
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((kind, flags))
        + struct.pack(">I", stream_id)
        + payload
    )


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    interim: list[int] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None  # RST_STREAM error code

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class H2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.responses: dict[int, Response] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.remote_settings: dict[int, int] = {}
        self.window_updates: list[tuple[int, int]] = []
        self._all: list[h2.events.Event] = []
        self._after_goaway = bytearray()
        self._inbuf = bytearray()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        port: int,
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
        settings: dict[int, int] | None = None,
    ) -> AsyncIterator[H2Client]:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_context, limit=2**20), WAIT
        )
        client = cls(reader, writer)
        if settings:
            client.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        client.conn.initiate_connection()
        client.flush()
        try:
            yield client
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    def flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.writer.write(out)

    def raw(self, data: bytes) -> None:
        self.writer.write(data)

    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        *,
        end: bool = True,
        authority: str = "127.0.0.1",
        scheme: str = "http",
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":scheme", scheme.encode()),
            (b":authority", authority.encode()),
        ]
        if method == "CONNECT":
            fields = [f for f in fields if f[0] != b":path"]
        fields += [(k.encode(), v.encode()) for k, v in headers or ()]
        self.responses[sid] = Response()
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def extended_connect(
        self, path: str, headers: list[tuple[str, str]] | None = None, protocol: str = "websocket"
    ) -> int:
        """RFC 8441 section 4: CONNECT with :protocol, :scheme and :path."""
        sid = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", b"CONNECT"),
            (b":protocol", protocol.encode()),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"127.0.0.1"),
            (b"sec-websocket-version", b"13"),
        ]
        fields += [(k.encode(), v.encode()) for k, v in headers or ()]
        self.responses[sid] = Response()
        self.conn.send_headers(sid, fields, end_stream=False)
        self.flush()
        return sid

    async def events(self, within: float = WAIT) -> list[Any]:
        """Read once and return the h2 events (empty list when the server closed)."""
        try:
            data = await asyncio.wait_for(self.reader.read(2**16), within)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return []
        # Whole frames are fed one at a time, so that the frames after a GOAWAY (responses of
        # streams still in flight, RFC 9113 section 6.8) never reach h2, which treats the
        # connection as dead once a GOAWAY arrived; those are read by hand.
        buf = self._inbuf
        buf += data
        events: list[Any] = []
        while len(buf) >= 9:
            end = 9 + int.from_bytes(buf[:3], "big")
            if len(buf) < end:
                break
            chunk = bytes(buf[:end])
            del buf[:end]
            if self.goaway is not None:
                self._read_after_goaway(chunk)
                continue
            try:
                new = self.conn.receive_data(chunk)
            except h2.exceptions.ProtocolError:
                self.closed = True
                return events
            for event in new:
                self._record(event)
            events += new
        self.flush()
        return events

    def _read_after_goaway(self, data: bytes | bytearray) -> None:
        buf = self._after_goaway
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                return
            kind, flags = buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(buf[9 : 9 + length])
            del buf[: 9 + length]
            response = self.responses.get(sid)
            if response is None:
                continue
            if kind == 0x1:  # HEADERS (the server never pads or sends priority)
                fields = list(self.conn.decoder.decode(payload, raw=True))
                if response.status:
                    response.trailers = fields
                else:
                    response.headers = fields
                    response.status = int(response.header(b":status") or 0)
            elif kind == 0x0:
                response.body += payload
            elif kind == 0x3:
                response.reset = int.from_bytes(payload, "big")
            if kind in (0x0, 0x1) and flags & 0x1:
                response.ended = True

    def _record(self, event: Any) -> None:
        self._all.append(event)
        sid = getattr(event, "stream_id", None)
        response = self.responses.get(sid) if sid else None
        if isinstance(event, h2.events.ResponseReceived) and response is not None:
            response.headers = list(event.headers)
            response.status = int(response.header(b":status") or 0)
        elif isinstance(event, h2.events.InformationalResponseReceived) and response:
            response.interim.append(int(dict(event.headers)[b":status"]))
        elif isinstance(event, h2.events.DataReceived) and response is not None:
            response.body += event.data
        elif isinstance(event, h2.events.TrailersReceived) and response is not None:
            response.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded) and response is not None:
            response.ended = True
        elif isinstance(event, h2.events.StreamReset) and response is not None:
            response.reset = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for code, change in event.changed_settings.items():
                self.remote_settings[int(code)] = change.new_value
        elif isinstance(event, h2.events.WindowUpdated):
            self.window_updates.append((event.stream_id or 0, event.delta or 0))

    async def send_body(self, sid: int, data: bytes, *, end: bool = False) -> None:
        """Send ``data`` on ``sid`` in frames that fit the windows, reading while they are
        shut (the server's WINDOW_UPDATEs open them)."""
        conn = self.conn
        sent = 0
        while sent < len(data):
            window = conn.local_flow_control_window(sid)
            if window == 0:
                await self.events()
                continue
            size = min(window, conn.max_outbound_frame_size, len(data) - sent)
            conn.send_data(sid, data[sent : sent + size])
            self.flush()
            sent += size
        if end:
            conn.end_stream(sid)
            self.flush()

    def acknowledge(self, sid: int, size: int) -> None:
        self.conn.acknowledge_received_data(size, sid)
        self.flush()

    async def until(self, predicate: Any, within: float = WAIT) -> None:
        """Read until ``predicate()`` holds (or the server closes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            if self.closed:
                raise ConnectionError("server closed the connection")
            await self.events(max(deadline - loop.time(), 0.001))

    async def response(self, sid: int, within: float = WAIT) -> Response:
        response = self.responses[sid]
        await self.until(lambda: response.ended or response.reset is not None, within)
        return response

    async def wait_closed(self, within: float = WAIT) -> None:
        """Read (and process) everything until the server closes the connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self.closed:
            await self.events(max(deadline - loop.time(), 0.001))
