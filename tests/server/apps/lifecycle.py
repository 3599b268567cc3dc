"""Apps with unusual lifecycles: startup that never answers, shutdown that hangs or fails,
non-ASGI-3 signatures, and a WebSocket echo that reports its worker pid."""

from __future__ import annotations

import asyncio
import os

from server.types import Receive, Scope, Send


async def _pid(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


async def never_starts(scope: Scope, receive: Receive, send: Send) -> None:
    """Receives lifespan.startup and then never answers."""
    if scope["type"] == "lifespan":
        await receive()
        print("STARTUP BEGAN", flush=True)
        await asyncio.Event().wait()
    await _pid(send)


async def echo_ws(scope: Scope, receive: Receive, send: Send) -> None:
    """WebSocket: accept, answer every message with the worker pid, report the close code."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                print("LIFESPAN SHUTDOWN", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                print(f"WS DISCONNECT {message.get('code')}", flush=True)
                return
            await send({"type": "websocket.send", "text": str(os.getpid())})
    await _pid(send)


async def one_argument(scope: Scope) -> None:  # neither ASGI 2 nor ASGI 3
    return None


async def shutdown_hangs(scope: Scope, receive: Receive, send: Send) -> None:
    """Completes startup; on shutdown hangs and even swallows the first cancellation."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        print("SHUTDOWN HANGS", flush=True)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            print("SHUTDOWN CANCELLED", flush=True)
            await asyncio.Event().wait()
    await _pid(send)


async def async_factory() -> None:
    return None


class AwaitableApp:
    """ASGI 3 in its class form: ``AwaitableApp(scope, receive, send)`` is awaited."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.send = send

    def __await__(self):  # type: ignore[no-untyped-def]
        return _pid(self.send).__await__()


async def shutdown_fails(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "could not flush the queue"})
        return
    await _pid(send)
