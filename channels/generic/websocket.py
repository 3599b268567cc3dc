"""WebSocket consumers: connect/receive/disconnect hooks over the ASGI websocket messages."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync

from ..consumer import AsyncConsumer, SyncConsumer
from ..db import close_old_connections_if_needed
from ..exceptions import AcceptConnection, DenyConnection, InvalidChannelLayerError, StopConsumer

Headers = Iterable[tuple[bytes, bytes]]


def _no_groups_error() -> InvalidChannelLayerError:
    return InvalidChannelLayerError(
        "This consumer lists groups but no channel layer is configured (CHANNEL_LAYERS "
        "BACKEND is unconfigured or doesn't support groups)"
    )


def _accept_message(subprotocol: str | None, headers: Headers | None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
    if headers:
        message["headers"] = list(headers)
    return message


def _close_message(code: int | bool | None, reason: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "websocket.close"}
    # ``send(..., close=True)`` passes True meaning "the default code".
    if code is not None and code is not True:
        message["code"] = int(code)
    if reason:
        message["reason"] = reason
    return message


def _send_message(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    if text_data is not None:
        return {"type": "websocket.send", "text": text_data}
    if bytes_data is not None:
        return {"type": "websocket.send", "bytes": bytes_data}
    raise ValueError("You must pass one of bytes_data or text_data")


class WebsocketConsumer(SyncConsumer):
    """Synchronous WebSocket consumer; override ``connect``, ``receive`` and ``disconnect``."""

    groups: list[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.groups is None:
            self.groups = []

    def websocket_connect(self, message: dict[str, Any]) -> None:
        if self.groups:
            group_add = getattr(self.channel_layer, "group_add", None)
            if group_add is None:
                raise _no_groups_error()
            for group in self.groups:
                async_to_sync(group_add)(group, self.channel_name)
        try:
            self.connect()
        except AcceptConnection:
            self.accept()
        except DenyConnection:
            self.close()

    def connect(self) -> None:
        self.accept()

    def accept(self, subprotocol: str | None = None, headers: Headers | None = None) -> None:
        super().send(_accept_message(subprotocol, headers))

    def websocket_receive(self, message: dict[str, Any]) -> None:
        if message.get("text") is not None:
            self.receive(text_data=message["text"])
        else:
            self.receive(bytes_data=message.get("bytes"))

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass

    def send(  # type: ignore[override]
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        super().send(_send_message(text_data, bytes_data))
        if close:
            self.close(close)

    def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        super().send(_close_message(code, reason))

    def websocket_disconnect(self, message: dict[str, Any]) -> None:
        group_discard = getattr(self.channel_layer, "group_discard", None)
        if self.groups and group_discard is not None:
            for group in self.groups:
                async_to_sync(group_discard)(group, self.channel_name)
        self.disconnect(message.get("code", 1005))
        raise StopConsumer()

    def disconnect(self, code: int) -> None:
        pass


class JsonWebsocketConsumer(WebsocketConsumer):
    """Text frames carry JSON: override ``receive_json`` and use ``send_json``."""

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if text_data:
            self.receive_json(self.decode_json(text_data), **kwargs)
        else:
            raise ValueError("No text section for incoming WebSocket frame!")

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        pass

    def send_json(self, content: Any, close: bool | int = False) -> None:
        super().send(text_data=self.encode_json(content), close=close)

    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content)


class AsyncWebsocketConsumer(AsyncConsumer):
    """Asynchronous WebSocket consumer; override ``connect``, ``receive`` and ``disconnect``."""

    groups: list[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.groups is None:
            self.groups = []

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        if self.groups:
            group_add = getattr(self.channel_layer, "group_add", None)
            if group_add is None:
                raise _no_groups_error()
            for group in self.groups:
                await group_add(group, self.channel_name)
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()

    async def connect(self) -> None:
        await self.accept()

    async def accept(self, subprotocol: str | None = None, headers: Headers | None = None) -> None:
        await super().send(_accept_message(subprotocol, headers))

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if message.get("text") is not None:
            await self.receive(text_data=message["text"])
        else:
            await self.receive(bytes_data=message.get("bytes"))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass

    async def send(  # type: ignore[override]
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        await super().send(_send_message(text_data, bytes_data))
        if close:
            await self.close(close)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await super().send(_close_message(code, reason))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        group_discard = getattr(self.channel_layer, "group_discard", None)
        if self.groups and group_discard is not None:
            for group in self.groups:
                await group_discard(group, self.channel_name)
        await self.disconnect(message.get("code", 1005))
        # Like the end of a Django request: what disconnect() used may be closed now.
        await close_old_connections_if_needed()
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        pass


class AsyncJsonWebsocketConsumer(AsyncWebsocketConsumer):
    """Async consumer whose text frames carry JSON."""

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if text_data:
            await self.receive_json(await self.decode_json(text_data), **kwargs)
        else:
            raise ValueError("No text section for incoming WebSocket frame!")

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        pass

    async def send_json(self, content: Any, close: bool | int = False) -> None:
        await super().send(text_data=await self.encode_json(content), close=close)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content)
