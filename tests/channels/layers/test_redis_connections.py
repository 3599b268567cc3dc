"""Who holds Redis connections: sync Django code (views, management commands) calling the
Redis layers through ``async_to_sync`` leaks none, and ``close_pools`` releases them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from channels.layers import get_channel_layer
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]


def _layers_setting(server: RedisServer) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [("127.0.0.1", server.port)]},
        }
    }


def broadcast_view(request: HttpRequest) -> HttpResponse:
    """What a project's sync view does to notify its consumers."""
    layer = get_channel_layer()
    async_to_sync(layer.group_send)("news", {"type": "news.item", "n": request.GET["n"]})
    return HttpResponse("sent")


def test_group_send_from_a_sync_view_50_times_leaks_no_connections(
    redis_server: RedisServer,
) -> None:
    """Each ``async_to_sync`` call from sync code runs on a new thread + event loop: no
    connection may outlive its loop and no "attached to a different loop" error may appear."""
    factory = RequestFactory()
    with override_settings(CHANNEL_LAYERS=_layers_setting(redis_server)):
        layer = get_channel_layer()
        async_to_sync(layer.group_add)("news", "news.sink")
        for n in range(50):
            response = broadcast_view(factory.get("/notify", {"n": str(n)}))
            assert response.status_code == 200
            assert redis_server.client_count() == 0
        received = [async_to_sync(layer.receive)("news.sink")["n"] for _ in range(50)]
        assert received == [str(n) for n in range(50)]
        async_to_sync(layer.flush)()
    assert redis_server.client_count() == 0


class NotifyCommand(BaseCommand):
    """A management command that talks to the layer (no event loop of its own)."""

    def handle(self, *args: Any, **options: Any) -> None:
        layer = get_channel_layer()
        async_to_sync(layer.send)("from.command", {"type": "cmd", "ok": True})
        self.stdout.write("notified")


def test_management_command_uses_get_channel_layer_with_async_to_sync(
    redis_server: RedisServer,
) -> None:
    with override_settings(CHANNEL_LAYERS=_layers_setting(redis_server)):
        for _ in range(2):
            out = io.StringIO()
            call_command(NotifyCommand(), stdout=out)
            assert out.getvalue().strip() == "notified"
        layer = get_channel_layer()
        assert async_to_sync(layer.receive)("from.command") == {"type": "cmd", "ok": True}
        assert async_to_sync(layer.receive)("from.command") == {"type": "cmd", "ok": True}
        async_to_sync(layer.flush)()
    assert redis_server.client_count() == 0


async def test_close_pools_releases_connections_and_layer_stays_usable(
    redis_server: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url])
    try:
        local = await layer.new_channel()
        await layer.send(local, {"type": "one"})
        assert await layer.receive(local) == {"type": "one"}  # starts the process reader
        await layer.send("named", {"type": "two"})
        assert await layer.receive("named") == {"type": "two"}
        assert redis_server.client_count() >= 2
        await layer.close_pools()
        assert redis_server.client_count() == 0
        await layer.send(local, {"type": "three"})  # new pools on demand
        assert await layer.receive(local) == {"type": "three"}
    finally:
        await layer.flush()
        await layer.close()
    assert redis_server.client_count() == 0


def test_pubsub_group_send_from_sync_code_50_times_leaks_no_connections(
    redis_server: RedisServer,
) -> None:
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url])
    for n in range(50):
        async_to_sync(layer.group_send)("news", {"type": "news.item", "n": n})
        async_to_sync(layer.send)("news.direct", {"type": "news.item", "n": n})
        assert redis_server.client_count() == 0
