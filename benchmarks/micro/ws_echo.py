"""Micro-benchmark: WebSocket echo round trips through ``WebSocketProtocol`` (no sockets).

One masked 64-byte text frame is fed to ``data_received`` and the loop runs until the echo is
written, repeated (what one client of workload C does).  Also: sending N frames (the fan-out
side, ``send`` only).

Run: ``python -m benchmarks.micro.ws_echo [N]`` -> µs per operation (best of 5 runs).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import TextMessage

from benchmarks.micro.http_cycle import Sink, spin
from server.config import Config
from server.protocols.websocket import WebSocketProtocol
from server.state import ServerState

TEXT = "x" * 64
FRAME = WsprotoConnection(ConnectionType.CLIENT).send(TextMessage(data=TEXT))
SCOPE_HEADERS = [
    (b"host", b"example.com"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
]


async def echo(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message["text"]})


async def _open(app: Any) -> tuple[WebSocketProtocol, Sink]:
    loop = asyncio.get_running_loop()
    proto = WebSocketProtocol(Config(access_log=False), app, ServerState(), loop)
    sink = Sink()
    # Only the keys the handshake reads (a partial WebSocketScope, hence Any).
    scope: Any = {"type": "websocket", "headers": SCOPE_HEADERS, "path": "/"}
    proto.start_upgrade(sink, scope, b"")
    await spin(sink, 1)
    return proto, sink


async def roundtrip(n: int) -> float:
    proto, sink = await _open(echo)
    feed = proto.data_received
    t0 = time.perf_counter()
    for i in range(2, n + 2):
        feed(FRAME)
        await spin(sink, i)
    elapsed = time.perf_counter() - t0
    assert sink.last == b"\x81\x40" + TEXT.encode(), sink.last
    proto.task.cancel()  # type: ignore[union-attr]
    return elapsed / n * 1e6


async def sends(n: int) -> float:
    started = asyncio.Event()
    holder: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        holder["send"] = send
        started.set()
        await asyncio.Event().wait()

    proto, _sink = await _open(app)
    await started.wait()
    send = holder["send"]
    # A distinct str per message: the fan-out cache must not hide the encoding cost.
    texts = [TEXT[:-8] + f"{i:08d}" for i in range(n)]
    t0 = time.perf_counter()
    for text in texts:
        await send({"type": "websocket.send", "text": text})
    elapsed = time.perf_counter() - t0
    proto.task.cancel()  # type: ignore[union-attr]
    return elapsed / n * 1e6


def main() -> None:
    import uvloop

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    for name, bench in (("echo round trip", roundtrip), ("send", sends)):
        best = min(uvloop.run(bench(n)) for _ in range(5))
        print(f"ws {name:16s} {best:7.2f} us/op")


if __name__ == "__main__":
    main()
