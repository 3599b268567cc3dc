"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT): a plain ASGI app and unchanged Channels
consumers, driven by the h2 library (for the CONNECT) and wsproto's frame layer (for the
frames inside the stream) over a real socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from h2.errors import ErrorCodes
from wsproto.frame_protocol import FrameProtocol, Opcode

from server.types import Receive, Scope, Send
from tests.support.h2client import H2Client
from tests.support.h2client import frame as h2frame
from tests.support.live import serve


async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    assert scope["type"] == "websocket"
    message = await receive()
    assert message["type"] == "websocket.connect"
    if scope["path"] == "/deny":
        await send({"type": "websocket.close"})
        return
    if scope["path"] == "/teapot":
        await send({"type": "websocket.http.response.start", "status": 418, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"short and stout"})
        return
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    await send(
        {
            "type": "websocket.send",
            "text": json.dumps(
                {
                    "http_version": scope["http_version"],
                    "scheme": scope["scheme"],
                    "path": scope["path"],
                }
            ),
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4000})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


class WsOverH2:
    """One RFC 8441 WebSocket stream on an H2Client."""

    def __init__(self, client: H2Client, sid: int) -> None:
        self.client = client
        self.sid = sid
        self.frames = FrameProtocol(client=True, extensions=[])
        self.seen = 0

    def send_text(self, text: str) -> None:
        self.client.conn.send_data(self.sid, self.frames.send_data(text, fin=True))
        self.client.flush()

    async def send_bytes(self, data: bytes) -> None:
        await self.client.send_body(self.sid, self.frames.send_data(data, fin=True))

    def close(self, code: int = 1000) -> None:
        self.client.conn.send_data(self.sid, self.frames.close(code))
        self.client.flush()

    async def next_frame(self) -> Any:
        """The next whole message (or control frame), pieces joined."""
        response = self.client.responses[self.sid]
        pieces: list[Any] = []
        while True:
            body = bytes(response.body)
            if len(body) > self.seen:
                self.frames.receive_bytes(body[self.seen :])
                self.client.acknowledge(self.sid, len(body) - self.seen)
                self.seen = len(body)
            for frame in self.frames.received_frames():
                if frame.opcode is Opcode.CONTINUATION or not frame.message_finished:
                    pieces.append(frame)
                    if not frame.message_finished:
                        continue
                if pieces:
                    if frame not in pieces:
                        pieces.append(frame)
                    first = pieces[0]
                    joined = type(first.payload)().join(p.payload for p in pieces)
                    return first._replace(payload=joined, message_finished=True)
                return frame
            await self.client.events()
            if self.client.closed:
                raise ConnectionError("closed")


async def _open(
    client: H2Client, path: str, headers: list[tuple[str, str]] | None = None
) -> WsOverH2:
    sid = client.extended_connect(path, headers)
    await client.until(lambda: client.responses[sid].status != 0 or client.responses[sid].ended)
    return WsOverH2(client, sid)


async def test_echo_over_extended_connect() -> None:
    async with serve(ws_app) as srv, H2Client.connect(srv.port) as client:
        ws = await _open(client, "/echo", [("sec-websocket-protocol", "chat, superchat")])
        response = client.responses[ws.sid]
        assert response.status == 200
        assert response.header(b"sec-websocket-protocol") == b"chat"
        assert response.header(b"sec-websocket-accept") is None  # RFC 8441 section 5
        hello = await ws.next_frame()
        assert json.loads(hello.payload) == {"http_version": "2", "scheme": "ws", "path": "/echo"}
        ws.send_text("héllo")
        assert (await ws.next_frame()).payload == "héllo"
        await ws.send_bytes(b"\x00\x01" * 40000)  # larger than one DATA frame
        frame = await ws.next_frame()
        assert frame.opcode is Opcode.BINARY and frame.payload == b"\x00\x01" * 40000
        # The app closes: a Close frame, then END_STREAM.
        ws.send_text("bye")
        frame = await ws.next_frame()
        assert frame.opcode is Opcode.CLOSE and frame.payload[0] == 4000
        await client.until(lambda: response.ended)
        # Other streams on the connection are unaffected.
        sid = client.request("GET", "/")
        assert (await client.response(sid)).status == 204


async def test_close_before_accept_is_403_and_denial_response() -> None:
    async with serve(ws_app) as srv, H2Client.connect(srv.port) as client:
        ws = await _open(client, "/deny")
        assert client.responses[ws.sid].status == 403
        ws = await _open(client, "/teapot")
        response = await client.response(ws.sid)
        assert response.status == 418
        assert bytes(response.body) == b"short and stout"


async def test_client_reset_delivers_disconnect() -> None:
    async with serve(ws_app) as srv, H2Client.connect(srv.port) as client:
        ws = await _open(client, "/echo")
        await ws.next_frame()
        client.conn.reset_stream(ws.sid, ErrorCodes.CANCEL)
        client.flush()
        ws2 = await _open(client, "/echo")
        assert client.responses[ws2.sid].status == 200


async def test_channels_consumers_over_h2() -> None:
    from tests.django_project.asgi import application

    async with serve(application) as srv, H2Client.connect(srv.port) as client:
        echo = await _open(client, "/ws/aecho/")
        assert client.responses[echo.sid].status == 200
        echo.send_text("ping over h2")
        assert (await echo.next_frame()).payload == "ping over h2"
        # Two chat members on two streams of one connection: a group message reaches both.
        alice = await _open(client, "/ws/chat/h2room/")
        bob = await _open(client, "/ws/chat/h2room/")
        alice.send_text(json.dumps({"text": "hi bob"}))
        for member in (alice, bob):
            frame = await member.next_frame()
            assert json.loads(frame.payload)["text"] == "hi bob"
        for ws in (echo, alice, bob):
            ws.close()
        for ws in (echo, alice, bob):
            frame = await ws.next_frame()
            assert frame.opcode is Opcode.CLOSE


async def test_connect_timeout_refuses_with_403() -> None:
    async def never_accepts(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await asyncio.Event().wait()  # until cancelled by the connect timeout

    async with (
        serve(never_accepts, ws_connect_timeout=0.2) as srv,
        H2Client.connect(srv.port) as client,
    ):
        ws = await _open(client, "/slow")
        assert client.responses[ws.sid].status == 403


async def test_ping_without_pong_resets_the_stream() -> None:
    disconnected = asyncio.Event()

    async def quiet(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        disconnected.set()

    options = {"ws_ping_interval": 0.1, "ws_ping_timeout": 0.2}
    async with serve(quiet, **options) as srv, H2Client.connect(srv.port) as client:
        ws = await _open(client, "/quiet")
        frame = await ws.next_frame()
        assert frame.opcode is Opcode.PING
        # A client that answers keeps the stream; this one stays silent.
        await client.until(lambda: client.responses[ws.sid].reset is not None)
        assert client.responses[ws.sid].reset == int(ErrorCodes.CANCEL)
        await asyncio.wait_for(disconnected.wait(), 10)


async def test_answered_pings_keep_the_stream() -> None:
    options = {"ws_ping_interval": 0.1, "ws_ping_timeout": 0.2}
    async with serve(ws_app, **options) as srv, H2Client.connect(srv.port) as client:
        ws = await _open(client, "/echo")
        await ws.next_frame()  # the app's hello
        for _ in range(3):  # three rounds: longer than one ping timeout
            frame = await ws.next_frame()
            assert frame.opcode is Opcode.PING
            client.conn.send_data(ws.sid, ws.frames.pong(frame.payload))
            client.flush()
        assert client.responses[ws.sid].reset is None
        ws.send_text("still here")
        frame = await ws.next_frame()
        while frame.opcode is Opcode.PING:  # a ping may come first: answer it
            client.conn.send_data(ws.sid, ws.frames.pong(frame.payload))
            client.flush()
            frame = await ws.next_frame()
        assert frame.payload == "still here"


async def test_permessage_deflate_over_h2() -> None:
    from wsproto.extensions import PerMessageDeflate

    async with (
        serve(ws_app, ws_per_message_deflate=True) as srv,
        H2Client.connect(srv.port) as client,
    ):
        offer = PerMessageDeflate()
        header = f"permessage-deflate; {offer.offer()}"
        ws = await _open(client, "/echo", [("sec-websocket-extensions", header)])
        answer = client.responses[ws.sid].header(b"sec-websocket-extensions")
        assert answer is not None and answer.startswith(b"permessage-deflate")
        offer.finalize(answer.decode().partition(";")[2].strip())
        ws.frames = FrameProtocol(client=True, extensions=[offer])
        hello = await ws.next_frame()
        assert json.loads(hello.payload)["path"] == "/echo"
        ws.send_text("squeeze me " * 100)
        assert (await ws.next_frame()).payload == "squeeze me " * 100


async def test_graceful_shutdown_closes_websocket_streams_with_1001() -> None:
    async with serve(ws_app) as srv, H2Client.connect(srv.port) as client:
        ws = await _open(client, "/echo")
        await ws.next_frame()  # hello
        for conn in list(srv.state.connections):
            conn.shutdown()
        frame = await ws.next_frame()
        assert client.goaway is not None and client.goaway.error_code == 0
        assert frame.opcode is Opcode.CLOSE and frame.payload[0] == 1001
        # h2 (the client) stops sending after a GOAWAY: the Close reply goes out by hand.
        client.raw(h2frame(0x0, 0, ws.sid, ws.frames.close(1001)))
        await client.wait_closed()
        assert client.responses[ws.sid].ended
