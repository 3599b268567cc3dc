"""A tiny worker application for the worker/runworker tests."""

from __future__ import annotations

import os
from typing import Any

from channels.consumer import AsyncConsumer
from channels.routing import ChannelNameRouter


class EchoWorker(AsyncConsumer):
    """Answers ``echo.request`` on ``message["reply_to"]``; ``boom`` crashes the instance."""

    async def echo_request(self, message: dict[str, Any]) -> None:
        await self.channel_layer.send(
            message["reply_to"],
            {
                "type": "echo.reply",
                "text": message["text"],
                "channel": self.scope["channel"],
                "pid": os.getpid(),
                "instance": id(self),
            },
        )

    async def boom(self, message: dict[str, Any]) -> None:
        raise RuntimeError("boom requested")


application = ChannelNameRouter(
    {"echo-worker": EchoWorker.as_asgi(), "other-worker": EchoWorker.as_asgi()}
)
