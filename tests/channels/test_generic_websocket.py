"""The four generic WebSocket consumers, driven through WebsocketCommunicator."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from channels.exceptions import AcceptConnection, DenyConnection, InvalidChannelLayerError
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

events: list[Any] = []


class SyncEcho(WebsocketConsumer):
    groups = ["sync-echo"]

    def connect(self) -> None:
        subprotocols = self.scope["subprotocols"]
        self.accept(subprotocols[0] if subprotocols else None, headers=[(b"x-hello", b"1")])

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "bye":
            self.send(text_data="closing", close=True)
        elif text_data == "bye-code":
            self.close(code=4004, reason="custom")
        elif text_data is not None:
            self.send(text_data=text_data[::-1])
        else:
            assert bytes_data is not None
            self.send(bytes_data=bytes_data * 2)

    def group_ping(self, event: dict[str, Any]) -> None:
        self.send(text_data="ping:" + event["n"])

    def disconnect(self, code: int) -> None:
        events.append(("sync-disconnect", code))


class AsyncEcho(AsyncWebsocketConsumer):
    groups = ["async-echo"]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "bye":
            await self.send(text_data="closing", close=4000)
        elif text_data is not None:
            await self.send(text_data=text_data.upper())
        else:
            await self.send(bytes_data=bytes_data)

    async def group_ping(self, event: dict[str, Any]) -> None:
        await self.send(text_data="ping:" + event["n"])

    async def disconnect(self, code: int) -> None:
        events.append(("async-disconnect", code))


@pytest.mark.parametrize("consumer", [SyncEcho, AsyncEcho])
async def test_echo_binary_groups_and_disconnect(consumer: Any) -> None:
    events.clear()
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(text_data="abc")
    assert await comm.receive_from() in ("cba", "ABC")
    await comm.send_to(bytes_data=b"\x00\x01")
    assert await comm.receive_from() in (b"\x00\x01\x00\x01", b"\x00\x01")
    # The class-level group was joined on connect...
    group = consumer.groups[0]
    layer = get_channel_layer()
    await layer.group_send(group, {"type": "group.ping", "n": "1"})
    assert await comm.receive_from() == "ping:1"
    assert layer.statistics().groups == 1
    await comm.disconnect(code=1001)
    assert events and events[-1][1] == 1001
    # ...and left on disconnect: the (in-memory) layer forgets the now-empty group.
    assert layer.statistics().groups == 0


async def test_subprotocol_and_accept_headers() -> None:
    comm = WebsocketCommunicator(SyncEcho.as_asgi(), "/", subprotocols=["chat.v2", "chat.v1"])
    connected, subprotocol = await comm.connect()
    assert connected and subprotocol == "chat.v2"
    assert comm.response_headers == [(b"x-hello", b"1")]
    await comm.disconnect()


async def test_send_with_close_true_and_close_codes() -> None:
    comm = WebsocketCommunicator(SyncEcho.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="bye")
    assert await comm.receive_from() == "closing"
    assert await comm.receive_output() == {"type": "websocket.close"}
    await comm.disconnect()

    comm = WebsocketCommunicator(SyncEcho.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="bye-code")
    assert await comm.receive_output() == {
        "type": "websocket.close",
        "code": 4004,
        "reason": "custom",
    }
    await comm.disconnect()

    comm = WebsocketCommunicator(AsyncEcho.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="bye")
    assert await comm.receive_from() == "closing"
    assert await comm.receive_output() == {"type": "websocket.close", "code": 4000}
    await comm.disconnect()


class Denier(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if self.scope["query_string"] == b"ok=1":
            raise AcceptConnection
        raise DenyConnection


class SyncDenier(WebsocketConsumer):
    def connect(self) -> None:
        self.close(code=4003)


async def test_accept_and_deny_exceptions() -> None:
    comm = WebsocketCommunicator(Denier.as_asgi(), "/?ok=1")
    assert await comm.connect() == (True, None)
    await comm.disconnect()
    comm = WebsocketCommunicator(Denier.as_asgi(), "/")
    assert await comm.connect() == (False, 1000)
    await comm.disconnect()
    comm = WebsocketCommunicator(SyncDenier.as_asgi(), "/")
    assert await comm.connect() == (False, 4003)
    await comm.disconnect()


class SyncJson(JsonWebsocketConsumer):
    def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.send_json({"got": content, "sum": sum(content.get("nums", []))})


class AsyncJson(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"got": content, "sum": sum(content.get("nums", []))})


class CompactJson(AsyncJsonWebsocketConsumer):
    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return "custom:" + str(sorted(content))

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(content)


@pytest.mark.parametrize("consumer", [SyncJson, AsyncJson])
async def test_json_consumers(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    await comm.send_json_to({"nums": [1, 2, 3], "s": "é"})
    assert await comm.receive_json_from() == {"got": {"nums": [1, 2, 3], "s": "é"}, "sum": 6}
    await comm.disconnect()


@pytest.mark.parametrize("consumer", [SyncJson, AsyncJson])
async def test_json_consumer_rejects_binary_frames(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(bytes_data=b"{}")
    with pytest.raises(ValueError, match="No text section"):
        await comm.wait()


async def test_json_encoding_is_overridable() -> None:
    comm = WebsocketCommunicator(CompactJson.as_asgi(), "/")
    await comm.connect()
    await comm.send_json_to({"b": 1, "a": 2})
    assert await comm.receive_from() == "custom:['a', 'b']"
    await comm.disconnect()


async def test_groups_without_a_layer_is_a_clear_error() -> None:
    with override_settings(CHANNEL_LAYERS={}):
        comm = WebsocketCommunicator(AsyncEcho.as_asgi(), "/")
        await comm.send_input({"type": "websocket.connect"})
        with pytest.raises(InvalidChannelLayerError, match="no channel layer"):
            await comm.wait()


async def test_groups_via_as_asgi_are_per_instance() -> None:
    comm = WebsocketCommunicator(AsyncEcho.as_asgi(groups=["custom-group"]), "/")
    await comm.connect()
    await get_channel_layer().group_send("custom-group", {"type": "group.ping", "n": "x"})
    assert await comm.receive_from() == "ping:x"
    await comm.disconnect()
    assert AsyncEcho.groups == ["async-echo"]


async def test_communicator_input_validation() -> None:
    comm = WebsocketCommunicator(AsyncEcho.as_asgi(), "/")
    with pytest.raises(ValueError, match="exactly one"):
        await comm.send_to()
    with pytest.raises(TypeError):
        WebsocketCommunicator(AsyncEcho.as_asgi(), b"/")  # type: ignore[arg-type]
    await comm.connect()
    assert await comm.receive_nothing()
    await comm.disconnect()
