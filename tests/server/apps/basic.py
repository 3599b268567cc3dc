"""ASGI apps used by the runtime/CLI/supervisor tests (run inside ``python -m server``).

``BLOCK_FD`` (env): a pipe the test controls.  ``/wait`` answers with a first chunk, then waits
(without blocking the loop) until the test writes a byte to the pipe before finishing; ``/block``
blocks the whole worker process on the pipe, which forces the kernel to hand the next
connection to another worker.
"""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

from server.types import Receive, Scope, Send


async def _text(send: Send, body: str, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


async def _wait_pipe() -> None:
    fd = int(os.environ["BLOCK_FD"])
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        loop.remove_reader(fd)
        os.read(fd, 1)
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, readable)
    await fut


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello from lifespan"
            print("LIFESPAN STARTUP", flush=True)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            print("LIFESPAN SHUTDOWN", flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/pid":
        await _text(send, str(os.getpid()))
    elif path == "/gc":
        await _text(send, repr(gc.get_threshold()))
    elif path == "/state":
        await _text(send, str(scope.get("state", {}).get("greeting")))
    elif path == "/wait":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"begin\n", "more_body": True})
        await _wait_pipe()
        await send({"type": "http.response.body", "body": b"end\n"})
    elif path == "/crash":
        os._exit(17)  # a worker dying abruptly (segfault, OOM kill...)
    elif path == "/block":
        os.read(int(os.environ["BLOCK_FD"]), 1)  # deliberately blocks this worker's loop
        await _text(send, str(os.getpid()))
    else:
        await _text(send, "ok " + path)


def factory() -> Any:
    return app


def not_an_app() -> None:  # takes no arguments: a factory in disguise
    return None


async def startup_fails(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await _text(send, "never")


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']!r}")
    await _text(send, "no lifespan here")


value = 42
