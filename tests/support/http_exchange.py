"""Raw HTTP/1.1 over a real socket to a ``tests.support.live`` server: send bytes as they are,
read everything back until the server closes, and pick the status codes out of the reply."""

from __future__ import annotations

import asyncio
import re

from server.types import Receive, Scope, Send
from tests.support.live import LiveServer, connect


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


async def exchange(srv: LiveServer, raw: bytes) -> bytes:
    """Send ``raw``, then read everything the server sends until it closes."""
    async with connect(srv) as (reader, writer):
        writer.write(raw)
        await writer.drain()
        return await read_all(reader)


def statuses(data: bytes) -> list[int]:
    """Status codes of the responses in ``data`` (bodies in these tests never look like one)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    out = scope["method"].encode() + b" " + scope["raw_path"] + b" " + body
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": out})
