"""An ASGI app exercising what HTTP/2 streams carry: echo, streaming, trailers, files.

Routes (path):
  /            "hello" (text/plain)
  /scope       the scope's http_version, scheme, method, path, query and headers as JSON
  /echo        the request body back, read with receive() in whatever pieces come
  /stream?n=K  K chunks of 16 KiB each (more_body), for flow-control tests
  /trailers    a body, then trailers x-checksum
  /file        pathsend of the file named by the x-file header
  /never-read  answers 200 without reading the (large) request body
  /wait        waits for http.disconnect and records it in ``EVENTS``
  /respond-then-read  starts the response, then reads the body (records the last message)
  /slow        sleeps until cancelled or disconnected (for graceful shutdown tests)
  /boom        raises
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from server.types import Receive, Scope, Send

EVENTS: list[Any] = []
RELEASE: asyncio.Event | None = None
_changed: asyncio.Event | None = None


def reset() -> asyncio.Event:
    """Clear the records; returns a fresh RELEASE event for /slow."""
    global RELEASE, _changed
    EVENTS.clear()
    RELEASE = asyncio.Event()
    _changed = asyncio.Event()
    return RELEASE


def record(item: Any) -> None:
    EVENTS.append(item)
    if _changed is not None:
        _changed.set()


async def wait_for_record(item: Any) -> None:
    """Return once ``item`` was recorded by the app (call ``reset()`` first)."""
    assert _changed is not None
    while item not in EVENTS:
        _changed.clear()
        await _changed.wait()


async def _respond(send: Send, body: bytes, status: int = 200, **extra: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body, **extra})


async def _read_all(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        await _respond(send, b"hello")
    elif path == "/scope":
        info = {
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "method": scope["method"],
            "path": scope["path"],
            "query_string": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "extensions": sorted(scope.get("extensions") or {}),
        }
        await _respond(send, json.dumps(info).encode())
    elif path == "/echo":
        await _respond(send, await _read_all(receive))
    elif path == "/stream":
        count = int(scope["query_string"].decode().partition("=")[2] or 4)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(count):
            await send(
                {
                    "type": "http.response.body",
                    "body": bytes([65 + i % 26]) * 16384,
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b""})
        record(("stream-done", count))
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"part1", "more_body": True})
        await send({"type": "http.response.body", "body": b"part2"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
    elif path == "/file":
        name = dict(scope["headers"])[b"x-file"].decode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": name})
    elif path == "/never-read":
        await _respond(send, b"not read")
    elif path == "/wait":
        message = await receive()
        while message["type"] == "http.request" and message.get("more_body"):
            message = await receive()
        if message["type"] == "http.request":
            message = await receive()
        record(message["type"])
    elif path == "/respond-then-read":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"started", "more_body": True})
        message = await receive()
        while message["type"] == "http.request" and message.get("more_body"):
            message = await receive()
        record(message["type"])
    elif path == "/slow":
        assert RELEASE is not None
        record("slow-started")
        await RELEASE.wait()
        await _respond(send, b"finished")
    elif path == "/boom":
        raise RuntimeError("boom")
    else:
        await _respond(send, b"not found", 404)


async def head_chunks(scope: Scope, receive: Receive, send: Send) -> None:
    """A response in three body messages, and one that promises more than it sends."""
    if scope["path"] == "/short":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )
        await send({"type": "http.response.body", "body": b"12345"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"ab", b"cd"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"ef"})


async def zerocopy(scope: Scope, receive: Receive, send: Send) -> None:
    """http.response.zerocopysend: two pieces of the file named by x-file (offset 10, 1000
    bytes, then the rest from the file's current position)."""
    name = dict(scope["headers"])[b"x-file"].decode()
    with open(name, "rb") as file:  # noqa: ASYNC230 - test app, small file
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(
            {
                "type": "http.response.zerocopysend",
                "file": file,
                "offset": 10,
                "count": 1000,
                "more_body": True,
            }
        )
        file.seek(2000)
        await send({"type": "http.response.zerocopysend", "file": file})
