"""Drop-in review: how the Redis layers behave when used from sync Django code, with big or
bad messages, and when Redis is down or stops answering."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

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


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_messages_over_one_megabyte_round_trip(redis_server: RedisServer, kind: str) -> None:
    layer: Any = (
        RedisChannelLayer(hosts=[redis_server.url])
        if kind == "redis"
        else RedisPubSubChannelLayer(hosts=[redis_server.url])
    )
    blob = os.urandom(3 * 1024 * 1024)
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "big", "blob": blob, "text": "é" * 300_000})
        message = await layer.receive(channel)
        assert message["blob"] == blob and len(message["text"]) == 300_000
    finally:
        await layer.flush()
        await layer.close()


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_unserialisable_payload_is_a_clear_error_at_send(
    redis_server: RedisServer, kind: str
) -> None:
    layer: Any = (
        RedisChannelLayer(hosts=[redis_server.url])
        if kind == "redis"
        else RedisPubSubChannelLayer(hosts=[redis_server.url])
    )
    try:
        sink = await layer.new_channel()  # subscribed up front (pub/sub keeps nothing)
        await layer.group_add("ser", sink)
        for call, target in ((layer.send, sink), (layer.group_send, "ser")):
            with pytest.raises(TypeError, match=r"msgpack-serialisable.*object"):
                await call(target, {"type": "bad", "value": object()})
        with pytest.raises(TypeError, match="msgpack-serialisable"):
            await layer.send(sink, {"type": "bad", "value": {1, 2}})
        # Nothing half-sent: the next good message is the first one received.
        await layer.send(sink, {"type": "good"})
        assert await layer.receive(sink) == {"type": "good"}
    finally:
        await layer.flush()
        await layer.close()


@pytest.fixture
def stopped_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A Redis that accepts connections but never answers (SIGSTOP), resumed afterwards."""
    assert redis_server.process is not None
    pid = redis_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield redis_server
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_unresponsive_redis_gives_a_bounded_clear_error(
    stopped_redis: RedisServer, kind: str
) -> None:
    layer: Any = (
        RedisChannelLayer(hosts=[stopped_redis.url])
        if kind == "redis"
        else RedisPubSubChannelLayer(hosts=[stopped_redis.url])
    )
    layer.command_timeout = 1.0
    try:
        # The outer timeout only keeps a regression from hanging the suite.
        async with asyncio.timeout(30):
            with pytest.raises(RedisTimeoutError, match="did not answer"):
                await layer.send("nowhere", {"type": "x"})
            with pytest.raises(RedisTimeoutError, match="did not answer"):
                await layer.group_send("nowhere", {"type": "x"})
            if kind == "pubsub":
                with pytest.raises(RedisTimeoutError, match="did not answer"):
                    await layer.new_channel()
            else:
                with pytest.raises(RedisTimeoutError, match="did not answer"):
                    await layer.group_add("nowhere", "nowhere.sink")
    finally:
        os.kill(stopped_redis.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
        await layer.close()


class SlammingServer:
    """Accepts TCP connections and closes them at once, counting the attempts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@pytest.mark.parametrize("target", ["named", "process-local", "pubsub"])
async def test_receive_while_redis_is_down_retries_without_busy_looping(
    caplog: pytest.LogCaptureFixture, target: str
) -> None:
    """A consumer waiting while Redis is down keeps waiting (no exception) and retries with
    backoff: a handful of connection attempts per second, not thousands."""
    caplog.set_level("ERROR", logger="channels.layers")  # the retry warnings are expected
    down = SlammingServer()
    layer: Any = (
        RedisPubSubChannelLayer(hosts=[("127.0.0.1", down.port)])
        if target == "pubsub"
        else RedisChannelLayer(hosts=[("127.0.0.1", down.port)])
    )
    try:
        if target == "process-local":
            channel = f"{layer.local_name}consumer.1"
        elif target == "pubsub":
            channel = "pubsub.consumer"
        else:
            channel = "named.consumer"
        waiting = asyncio.ensure_future(layer.receive(channel))
        window = 3.0
        await asyncio.sleep(window)  # the observation window itself (no event to await)
        assert not waiting.done(), waiting.exception() if waiting.done() else None
        # Backoff is capped at 0.5 s between rounds of at most 6 tries: far below 100 in 3 s.
        assert 1 <= down.accepted < 100, down.accepted
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await layer.close()
        down.close()


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


async def test_local_receive_buffer_is_per_channel(redis_server: RedisServer) -> None:
    """Process-local channels share one Redis list, but a channel nobody reads must not hold
    up the others: messages wait in that channel's own buffer, in order."""
    layer = RedisChannelLayer(hosts=[redis_server.url])
    try:
        idle, busy = await layer.new_channel(), await layer.new_channel()
        for n in range(5):
            await layer.send(idle, {"n": n})
        await layer.send(busy, {"type": "for.busy"})
        async with asyncio.timeout(10):
            assert await layer.receive(busy) == {"type": "for.busy"}
            assert [(await layer.receive(idle))["n"] for _ in range(5)] == list(range(5))
    finally:
        await layer.flush()
        await layer.close()


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_send_while_redis_is_down_fails_fast_and_clearly(kind: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hosts = [("127.0.0.1", port)]
    layer: Any = (
        RedisChannelLayer(hosts=hosts) if kind == "redis" else RedisPubSubChannelLayer(hosts=hosts)
    )
    try:
        async with asyncio.timeout(30):  # only guards against a regression hanging the suite
            for call, target in ((layer.send, "down.sink"), (layer.group_send, "down-group")):
                with pytest.raises(RedisConnectionError, match=f"127.0.0.1:{port}"):
                    await call(target, {"type": "lost"})
    finally:
        await layer.close()


def test_pubsub_group_send_from_sync_code_50_times_leaks_no_connections(
    redis_server: RedisServer,
) -> None:
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url])
    for n in range(50):
        async_to_sync(layer.group_send)("news", {"type": "news.item", "n": n})
        async_to_sync(layer.send)("news.direct", {"type": "news.item", "n": n})
        assert redis_server.client_count() == 0
