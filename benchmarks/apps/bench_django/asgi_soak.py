"""The soak's app (``python -m benchmarks soak``): the Django project of workloads B-E, one more
consumer (a chat room, the churn of issue reports: group_add on connect, a group_send per
message, group_discard on disconnect) and a debug endpoint, ``GET /soak/stats``.

The endpoint answers from inside the server process what cannot be read from /proc: the number
of asyncio tasks on the server's loop, the live Python objects, and the channel layer's own
counts (channels with a mailbox, groups, messages waiting).  It lives here, in the soak's app,
and not in the server: a production server has no business exposing this.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_django.settings")

from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

from django.urls import path  # noqa: E402

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .consumers import EchoConsumer, GroupMember, Trigger  # noqa: E402

Scope = dict[str, Any]


class ChatConsumer(AsyncWebsocketConsumer):
    """``/ws/chat/<room>/``: every text message goes to everyone in the room."""

    async def connect(self) -> None:
        self.room = "soak-chat-" + self.scope["url_route"]["kwargs"]["room"]
        assert self.channel_layer is not None
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_send(self.room, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


websocket = URLRouter(
    [
        path("ws/echo/", EchoConsumer.as_asgi()),
        path("ws/group/", GroupMember.as_asgi()),
        path("ws/trigger/", Trigger.as_asgi()),
        path("ws/chat/<str:room>/", ChatConsumer.as_asgi()),
    ]
)
router = ProtocolTypeRouter({"http": django_app, "websocket": websocket})


def layer_stats() -> dict[str, int]:
    """The default layer's size, from its public ``statistics()`` when it has one (in-memory),
    else from its process-local mailboxes (the Redis layers)."""
    layer: Any = get_channel_layer()
    if layer is None:
        return {}
    statistics = getattr(layer, "statistics", None)
    if callable(statistics):
        stats = statistics()
        if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
            return {k: v for k, v in dataclasses.asdict(stats).items() if k in LAYER_SIZES}
    out: dict[str, int] = {}
    boxes = getattr(layer, "_mailboxes", None)
    if boxes is not None:
        out["channels"] = len(boxes)
        buffered = getattr(boxes, "buffered", None)
        if callable(buffered):
            out["buffered_messages"] = int(buffered())
        else:
            out["buffered_messages"] = sum(
                len(getattr(box, "buffer", ())) for box in list(boxes.values())
            )
    groups = getattr(layer, "_groups", None)
    if groups is not None:
        out["groups"] = len(groups)
    return out


# Sizes, not cumulative counters: only these can reveal growth without bound.
LAYER_SIZES = ("channels", "groups", "buffered_messages", "waiting_receivers")


async def stats(send: Any) -> None:
    body = {
        "pid": os.getpid(),
        "tasks": len(asyncio.all_tasks()),
        "objects": len(gc.get_objects()),
        "layer": layer_stats(),
    }
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def application(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/soak/stats":
        await stats(send)
        return
    await router(scope, receive, send)
