"""ASGI app for the multi-worker test: every WebSocket joins one group; any client's message
is broadcast to the group; each reply carries the worker's pid."""

from __future__ import annotations

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.channels.layers.multiworker_settings")
django.setup()

from django.urls import path  # noqa: E402 - needs django.setup() first

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

GROUP = "everyone"
urlpatterns: list[Any] = []


class BroadcastConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "pid": os.getpid()})

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(GROUP, {"type": "broadcast.message", "n": content["n"]})

    async def broadcast_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "broadcast", "n": event["n"], "pid": os.getpid()})


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/", BroadcastConsumer.as_asgi())])}
)
