"""App for the metrics tests (run inside ``python -m server``).

HTTP: ``/layer`` exercises the default channel layer (needs ``DJANGO_SETTINGS_MODULE``, e.g.
``tests.server.apps.inmemory_settings``); ``/block?SECONDS`` blocks the event loop (loop lag);
anything else answers ``ok``.
WebSocket: accepts, echoes every text message, and closes with code N on ``close:N``.
"""

from __future__ import annotations

import time
from typing import Any

from server.types import Receive, Scope, Send


async def _text(send: Send, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _layer() -> bytes:
    from channels.exceptions import ChannelFull
    from channels.layers import get_channel_layer

    layer: Any = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("metered", channel)
    await layer.group_send("metered", {"type": "hello"})
    await layer.receive(channel)
    full = await layer.new_channel()
    try:
        for _ in range(layer.capacity + 1):
            await layer.send(full, {"type": "fill"})
    except ChannelFull:
        pass
    return b"layer ok"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        path = scope["path"]
        if path == "/layer":
            await _text(send, await _layer())
        elif path == "/block":
            # Deliberately blocks the event loop (the loop-lag metric must notice).
            time.sleep(float(scope["query_string"] or b"0.6"))  # noqa: ASYNC251
            await _text(send, b"blocked")
        else:
            await _text(send, b"ok")
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text") or ""
        if text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:])})
            return
        await send({"type": "websocket.send", "text": text})
