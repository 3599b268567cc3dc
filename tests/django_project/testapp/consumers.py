"""Consumers used by the channels test-suite (served by tests.django_project.asgi)."""

from __future__ import annotations

import os
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model

from channels.consumer import SyncConsumer
from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)


class EchoConsumer(WebsocketConsumer):
    """Synchronous echo: text comes back as text, bytes as bytes."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close":
            self.close(code=4001, reason="asked to")
        elif text_data is not None:
            self.send(text_data=text_data)
        else:
            self.send(bytes_data=bytes_data)


class AsyncEchoConsumer(AsyncWebsocketConsumer):
    """Async echo that also reports the URL route and process id on request."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "route":
            await self.send_json_route()
        elif text_data == "pid":
            await self.send(text_data=str(os.getpid()))
        elif text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)

    async def send_json_route(self) -> None:
        import json

        route = self.scope.get("url_route", {})
        await self.send(
            text_data=json.dumps({"args": list(route.get("args", ())), "kwargs": route["kwargs"]})
        )


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """Joins group "chat_<room>" and broadcasts every JSON message to it."""

    async def connect(self) -> None:
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.groups = [f"chat_{self.room}"]
        await self.channel_layer.group_add(self.groups[0], self.channel_name)
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(
            f"chat_{self.room}",
            {"type": "chat.message", "text": content.get("text"), "pid": os.getpid()},
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"text": event["text"], "pid": event["pid"]})


class WhoAmIConsumer(JsonWebsocketConsumer):
    """Reports scope["user"] and a per-session visit counter (saved explicitly)."""

    def connect(self) -> None:
        self.accept()
        user = self.scope["user"]
        session = self.scope["session"]
        session["visits"] = session.get("visits", 0) + 1
        session.save()
        self.send_json(
            {
                "user": user.get_username() if user.is_authenticated else None,
                "visits": session["visits"],
            }
        )


class UserCountConsumer(AsyncWebsocketConsumer):
    """Touches the database from an async consumer the documented way."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        count = await self.count_users()
        await self.send(text_data=str(count))

    @database_sync_to_async
    def count_users(self) -> int:
        return get_user_model().objects.count()


class HelloHttpConsumer(AsyncHttpConsumer):
    """Answers with the request body, upper-cased, and the method."""

    async def handle(self, body: bytes) -> None:
        await self.send_response(
            200,
            self.scope["method"].encode() + b" " + body.upper(),
            headers=[(b"Content-Type", b"text/plain")],
        )


class TaskConsumer(SyncConsumer):
    """Background-worker consumer (``runworker testapp-tasks``): answers on a reply channel."""

    def task_echo(self, message: dict[str, Any]) -> None:
        async_to_sync(self.channel_layer.send)(
            message["reply_to"], {"type": "task.done", "result": message["payload"]}
        )
