"""AsyncConsumer / SyncConsumer basics: dispatch by type, as_asgi, channel layer wiring."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from channels.consumer import AsyncConsumer, SyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator, WebsocketCommunicator


def test_handler_names() -> None:
    assert get_handler_name({"type": "websocket.receive"}) == "websocket_receive"
    assert get_handler_name({"type": "chat.message.new"}) == "chat_message_new"
    with pytest.raises(ValueError, match="leading underscore"):
        get_handler_name({"type": "_private.thing"})
    with pytest.raises(ValueError, match="leading underscore"):
        get_handler_name({"type": ".sneaky"})
    with pytest.raises(ValueError, match="no 'type'"):
        get_handler_name({"text": "hi"})
    with pytest.raises(ValueError, match="must be a string"):
        get_handler_name({"type": 3})


class Counter(AsyncConsumer):
    step = 1

    async def test_add(self, message: dict[str, Any]) -> None:
        await self.send({"type": "result", "value": message["value"] + self.step})

    async def test_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer


async def test_async_consumer_dispatch_and_stop() -> None:
    comm = ApplicationCommunicator(Counter.as_asgi(step=10), {"type": "test"})
    await comm.send_input({"type": "test.add", "value": 1})
    assert await comm.receive_output() == {"type": "result", "value": 11}
    await comm.send_input({"type": "test.stop"})
    await comm.wait()


async def test_unknown_type_is_an_error() -> None:
    comm = ApplicationCommunicator(Counter.as_asgi(), {"type": "test"})
    await comm.send_input({"type": "test.nothing"})
    with pytest.raises(ValueError, match=r"No handler for message type test\.nothing"):
        await comm.wait()


async def test_private_handler_not_reachable() -> None:
    class Secretive(AsyncConsumer):
        async def _internal(self, message: dict[str, Any]) -> None:  # pragma: no cover
            raise AssertionError("reached a private method")

    comm = ApplicationCommunicator(Secretive.as_asgi(), {"type": "test"})
    await comm.send_input({"type": "_internal"})
    with pytest.raises(ValueError, match="leading underscore"):
        await comm.wait()


def test_as_asgi_metadata_and_validation() -> None:
    app = Counter.as_asgi(step=3)
    assert app.consumer_class is Counter
    assert app.consumer_initkwargs == {"step": 3}
    assert app.__name__ == "Counter"
    with pytest.raises(TypeError, match="invalid keyword 'nope'"):
        Counter.as_asgi(nope=1)
    with pytest.raises(TypeError, match="would replace the method"):
        Counter.as_asgi(test_add=None)
    with pytest.raises(TypeError, match="private"):
        Counter.as_asgi(_sync=True)


async def test_as_asgi_makes_a_new_instance_per_connection() -> None:
    instances: list[Any] = []

    class Remember(AsyncConsumer):
        async def test_go(self, message: dict[str, Any]) -> None:
            instances.append(self)
            raise StopConsumer

    app = Remember.as_asgi()
    for _ in range(2):
        comm = ApplicationCommunicator(app, {"type": "test"})
        await comm.send_input({"type": "test.go"})
        await comm.wait()
    assert len(instances) == 2 and instances[0] is not instances[1]


class SyncRecorder(SyncConsumer):
    def test_where(self, message: dict[str, Any]) -> None:
        self.send({"type": "where", "main": threading.current_thread() is threading.main_thread()})

    def test_users(self, message: dict[str, Any]) -> None:
        # ORM use straight from a sync handler is allowed (it runs in a worker thread).
        self.send({"type": "users", "count": get_user_model().objects.count()})


async def test_sync_consumer_runs_handlers_in_a_thread() -> None:
    comm = ApplicationCommunicator(SyncRecorder.as_asgi(), {"type": "test"})
    await comm.send_input({"type": "test.where"})
    assert await comm.receive_output() == {"type": "where", "main": False}
    comm.stop()


async def test_sync_consumer_can_use_the_orm(db: None) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(get_user_model().objects.create_user)("alice", password="pw")
    comm = ApplicationCommunicator(SyncRecorder.as_asgi(), {"type": "test"})
    await comm.send_input({"type": "test.users"})
    assert await comm.receive_output() == {"type": "users", "count": 1}
    comm.stop()


class LayerUser(AsyncConsumer):
    async def websocket_connect(self, message: dict[str, Any]) -> None:
        await self.send({"type": "websocket.accept"})
        await self.channel_layer.group_add("room", self.channel_name)
        await self.send({"type": "websocket.send", "text": self.channel_name})

    async def room_event(self, message: dict[str, Any]) -> None:
        await self.send({"type": "websocket.send", "text": message["text"]})

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.channel_layer.group_discard("room", self.channel_name)
        raise StopConsumer


async def test_channel_layer_and_name_are_set_and_receive_messages() -> None:
    comm = WebsocketCommunicator(LayerUser.as_asgi(), "/")
    assert (await comm.connect())[0]
    channel_name = await comm.receive_from()
    assert isinstance(channel_name, str) and "!" in channel_name
    layer = get_channel_layer()
    await layer.send(channel_name, {"type": "room.event", "text": "direct"})
    assert await comm.receive_from() == "direct"
    await layer.group_send("room", {"type": "room.event", "text": "group"})
    assert await comm.receive_from() == "group"
    await comm.disconnect()


async def test_no_layer_configured_means_none() -> None:
    class Check(AsyncConsumer):
        async def test_check(self, message: dict[str, Any]) -> None:
            await self.send({"type": "layer", "none": self.channel_layer is None})
            raise StopConsumer

    with override_settings(CHANNEL_LAYERS={}):
        comm = ApplicationCommunicator(Check.as_asgi(), {"type": "test"})
        await comm.send_input({"type": "test.check"})
        assert await comm.receive_output() == {"type": "layer", "none": True}
        await comm.wait()


async def test_channel_layer_alias_opt_out() -> None:
    class NoLayer(AsyncConsumer):
        channel_layer_alias = None

        async def test_check(self, message: dict[str, Any]) -> None:
            await self.send({"type": "layer", "has_name": hasattr(self, "channel_name")})
            raise StopConsumer

    comm = ApplicationCommunicator(NoLayer.as_asgi(), {"type": "test"})
    await comm.send_input({"type": "test.check"})
    assert await comm.receive_output() == {"type": "layer", "has_name": False}
    await comm.wait()


class ClosedSocket(OSError):
    """What an ASGI server may raise from ``send`` once the WebSocket is closed."""


async def _drive_closed_socket(consumer_cls: type) -> tuple[list[str], list[dict[str, Any]]]:
    """Accept, then the client leaves while a group message is on its way: the group message's
    ``send`` meets a closed socket, the queued disconnect must still be dispatched."""
    import asyncio

    events: list[str] = []
    sent: list[dict[str, Any]] = []
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    closed = False
    accepted = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return await incoming.get()

    async def send(message: dict[str, Any]) -> None:
        if closed:
            raise ClosedSocket("websocket is closed")
        sent.append(message)
        accepted.set()

    app = consumer_cls.as_asgi(events=events)
    incoming.put_nowait({"type": "websocket.connect"})
    task = asyncio.ensure_future(app({"type": "websocket", "path": "/"}, receive, send))
    layer = get_channel_layer()
    assert layer is not None
    await asyncio.wait_for(accepted.wait(), 10)
    closed = True
    await layer.group_send("room", {"type": "chat.message", "text": "late"})
    incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})
    await asyncio.wait_for(task, 10)
    return events, sent


class AsyncRoom(AsyncWebsocketConsumer):
    groups = ["room"]
    events: list[str] = []

    async def chat_message(self, message: dict[str, Any]) -> None:
        self.events.append("message")
        await self.send(text_data=message["text"])
        self.events.append("sent")

    async def disconnect(self, code: int) -> None:
        self.events.append(f"disconnect {code}")


class SyncRoom(WebsocketConsumer):
    groups = ["room"]
    events: list[str] = []

    def chat_message(self, message: dict[str, Any]) -> None:
        self.events.append("message")
        self.send(text_data=message["text"])
        self.events.append("sent")

    def disconnect(self, code: int) -> None:
        self.events.append(f"disconnect {code}")


@pytest.mark.parametrize("consumer_cls", [AsyncRoom, SyncRoom])
async def test_send_to_a_closed_websocket_is_dropped_and_disconnect_still_runs(
    consumer_cls: type,
) -> None:
    events, sent = await _drive_closed_socket(consumer_cls)
    assert [m["type"] for m in sent] == ["websocket.accept"]
    assert events == ["message", "sent", "disconnect 1001"]
    layer = get_channel_layer()
    assert layer is not None
    assert not layer.groups.get("room")  # group_discard ran


async def test_other_send_errors_still_propagate() -> None:
    class Broken(AsyncConsumer):
        async def test_go(self, message: dict[str, Any]) -> None:
            await self.send({"type": "http.response.start", "status": 200})

    async def send(message: dict[str, Any]) -> None:
        raise ClosedSocket("not a websocket message: not ours to drop")

    async def receive() -> dict[str, Any]:
        return {"type": "test.go"}

    with pytest.raises(ClosedSocket):
        await Broken.as_asgi()({"type": "test"}, receive, send)
