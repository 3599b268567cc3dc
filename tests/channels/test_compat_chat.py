"""End-to-end drop-in check: a project shaped like the Channels tutorial's chat app, unchanged,
served by our server over real sockets and driven by two ``websockets`` clients.

Both variants of the tutorial consumer are here: synchronous (``WebsocketConsumer`` calling the
layer through ``async_to_sync``) and asynchronous (``AsyncWebsocketConsumer``).  They join
``chat_<room>``, broadcast with ``group_send({"type": "chat.message", ...})`` handled by
``chat_message``, and sit behind ``AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter))``
next to Django's own HTTP app, exactly as the tutorial's ``asgi.py`` wires them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.asgi import get_asgi_application
from django.urls import re_path
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.layers import get_channel_layer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from tests.support.live import LiveServer, serve

# Consumers report their disconnect here so tests can await it instead of sleeping.
_disconnects: asyncio.Queue[str] | None = None


async def _report_disconnect(room_group_name: str) -> None:
    if _disconnects is not None:
        _disconnects.put_nowait(room_group_name)


def _who(scope: Mapping[str, Any]) -> str:
    user = scope["user"]
    return str(user.username) if user.is_authenticated else "anonymous"


# --- the project's consumers.py (tutorial shape) -----------------------------------------


class ChatConsumer(WebsocketConsumer):
    def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        async_to_sync(self.channel_layer.group_add)(self.room_group_name, self.channel_name)
        self.accept()

    def disconnect(self, close_code: int) -> None:
        async_to_sync(self.channel_layer.group_discard)(self.room_group_name, self.channel_name)
        async_to_sync(_report_disconnect)(self.room_group_name)

    # The tutorial's receive takes text_data only.
    def receive(self, text_data: str) -> None:  # type: ignore[override]
        message = json.loads(text_data)["message"]
        async_to_sync(self.channel_layer.group_send)(
            self.room_group_name,
            {"type": "chat.message", "message": message, "who": _who(self.scope)},
        )

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=json.dumps({"message": event["message"], "who": event["who"]}))


class AsyncChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)
        await _report_disconnect(self.room_group_name)

    async def receive(self, text_data: str) -> None:  # type: ignore[override]
        message = json.loads(text_data)["message"]
        who = await sync_to_async(_who)(self.scope)  # resolving the lazy user may hit the DB
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message, "who": who}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"message": event["message"], "who": event["who"]}))


# --- the project's routing.py and asgi.py ------------------------------------------------

websocket_urlpatterns = [
    # Unanchored, as in the tutorial.
    re_path(r"ws/chat/(?P<room_name>\w+)/$", ChatConsumer.as_asgi()),
    re_path(r"ws/achat/(?P<room_name>\w+)/$", AsyncChatConsumer.as_asgi()),
]


def make_application() -> ProtocolTypeRouter:
    django_asgi_app = get_asgi_application()
    return ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )


# --- tests -------------------------------------------------------------------------------


@pytest.fixture
async def live(db: None) -> AsyncIterator[LiveServer]:
    global _disconnects
    _disconnects = asyncio.Queue()
    try:
        async with serve(make_application(), lifespan="off", access_log=False) as srv:
            yield srv
    finally:
        _disconnects = None


def _origin(live: LiveServer) -> Any:
    # What a browser on the page served by this host sends (the host is in ALLOWED_HOSTS).
    return f"http://{live.host}:{live.port}"


async def _recv_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


@pytest.mark.parametrize("prefix", ["chat", "achat"])
async def test_two_clients_chat_in_a_room(live: LiveServer, prefix: str) -> None:
    url = f"{live.ws_url}/ws/{prefix}/lobby/"
    async with (
        connect(url, origin=_origin(live)) as alice,
        connect(url, origin=_origin(live)) as bob,
        connect(f"{live.ws_url}/ws/{prefix}/kitchen/", origin=_origin(live)) as carol,
    ):
        await alice.send(json.dumps({"message": "hello"}))
        assert await _recv_json(alice) == {"message": "hello", "who": "anonymous"}
        assert await _recv_json(bob) == {"message": "hello", "who": "anonymous"}
        await bob.send(json.dumps({"message": "hi alice"}))
        assert await _recv_json(bob) == {"message": "hi alice", "who": "anonymous"}
        assert await _recv_json(alice) == {"message": "hi alice", "who": "anonymous"}
        # Another room hears nothing of the lobby: its first message is its own.
        await carol.send(json.dumps({"message": "anyone?"}))
        assert await _recv_json(carol) == {"message": "anyone?", "who": "anonymous"}

    # Every consumer left its group on disconnect; the layer holds no member any more.
    assert _disconnects is not None
    left = sorted([await asyncio.wait_for(_disconnects.get(), 5) for _ in range(3)])
    assert left == ["chat_kitchen", "chat_lobby", "chat_lobby"]
    layer = get_channel_layer()
    assert layer is not None
    assert not layer.groups.get("chat_lobby") and not layer.groups.get("chat_kitchen")


@pytest.mark.parametrize("prefix", ["chat", "achat"])
async def test_logged_in_user_reaches_the_consumer(live: LiveServer, prefix: str) -> None:
    from django.contrib.auth import get_user_model

    await sync_to_async(get_user_model().objects.create_user)("alice", password="pw")
    async with httpx.AsyncClient(base_url=live.url) as client:
        r = await client.get("/login/", params={"u": "alice", "p": "pw"})
        assert r.status_code == 200
        cookie = f"sessionid={client.cookies['sessionid']}"
    url = f"{live.ws_url}/ws/{prefix}/auth/"
    async with (
        connect(url, origin=_origin(live), additional_headers={"Cookie": cookie}) as alice,
        connect(url, origin=_origin(live)) as guest,
    ):
        await alice.send(json.dumps({"message": "it's me"}))
        assert await _recv_json(guest) == {"message": "it's me", "who": "alice"}
        await guest.send(json.dumps({"message": "who?"}))
        assert await _recv_json(alice) == {"message": "it's me", "who": "alice"}
        assert await _recv_json(alice) == {"message": "who?", "who": "anonymous"}


@pytest.mark.parametrize("prefix", ["chat", "achat"])
async def test_sync_django_view_pushes_to_the_room(live: LiveServer, prefix: str) -> None:
    url = f"{live.ws_url}/ws/{prefix}/news/"
    async with (
        connect(url, origin=_origin(live)) as alice,
        connect(url, origin=_origin(live)) as bob,
        httpx.AsyncClient(base_url=live.url) as client,
    ):
        r = await client.get("/notify/", params={"room": "news", "m": "extra!"})
        assert r.status_code == 200 and r.text == "sent"
        for ws in (alice, bob):
            assert await _recv_json(ws) == {"message": "extra!", "who": "server"}


async def test_push_from_a_plain_thread_reaches_the_room(live: LiveServer) -> None:
    """Code outside the server's event loop (a test thread of ChannelsLiveServerTestCase, a
    background thread) pushes with ``async_to_sync(layer.group_send)`` on its own loop."""
    import threading

    url = f"{live.ws_url}/ws/achat/thread/"
    async with connect(url, origin=_origin(live)) as alice:
        layer = get_channel_layer()

        def push() -> None:
            async_to_sync(layer.group_send)(
                "chat_thread", {"type": "chat.message", "message": "from a thread", "who": "t"}
            )

        pusher = threading.Thread(target=push)
        pusher.start()
        assert await _recv_json(alice) == {"message": "from a thread", "who": "t"}
        await asyncio.to_thread(pusher.join, 5)


async def test_foreign_origin_and_missing_origin_are_refused(live: LiveServer) -> None:
    url = f"{live.ws_url}/ws/chat/lobby/"
    for origin in ("http://evil.example.net", None):
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, origin=origin):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403


async def test_django_http_still_served(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        r = await client.get("/")
    assert r.status_code == 200 and r.text == "django says hi"
