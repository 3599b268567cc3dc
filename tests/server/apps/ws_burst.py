"""A WebSocket app for the graceful-shutdown test (run inside ``python -m server``).

Each connection is accepted and sent numbered text messages as fast as the server lets it
(``send`` waits while the client is not reading) until ``send`` raises because the connection
closed; the app then prints how many sends returned (``ACKED <path> <n>``), the messages the
server acknowledged to it.
"""

from __future__ import annotations

from server.types import Receive, Scope, Send

PADDING = "x" * 1000


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    acked = 0
    try:
        while True:
            await send({"type": "websocket.send", "text": f"{acked:08d} {PADDING}"})
            acked += 1
    except OSError:  # ClientDisconnected (ASGI 2.4): the connection is closing
        pass
    print(f"ACKED {scope['path']} {acked}", flush=True)
