"""Every documented channels_redis ``CONFIG`` form against a real redis-server.

Settings written for channels_redis (``hosts`` as tuples, URLs, ``unix://`` paths, dicts with
``address`` plus client options, ``symmetric_encryption_keys`` lists, ``channel_capacity``
globs and compiled regexes, ``prefix``, ``group_expiry``; the pub/sub layer's
``on_disconnect``/``on_reconnect``) must work unchanged.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
import redis as sync_redis

from channels.exceptions import ChannelFull
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.channels.layers.conftest import FakeClock
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


def _host_forms(server: RedisServer) -> dict[str, Any]:
    assert server.socket_path is not None
    return {
        "tuple": [("127.0.0.1", server.port)],
        "list-pair": [["127.0.0.1", server.port]],
        "url": [f"redis://127.0.0.1:{server.port}"],
        "unix-url": [f"unix://{server.socket_path}"],
        "dict-url-db": [{"address": f"redis://127.0.0.1:{server.port}", "db": 3}],
        "dict-tuple-db": [{"address": ("127.0.0.1", server.port), "db": 3}],
        "dict-unix": [{"address": f"unix://{server.socket_path}"}],
        "url-db-path": [f"redis://127.0.0.1:{server.port}/3"],
    }


FORMS = [
    "tuple",
    "list-pair",
    "url",
    "unix-url",
    "dict-url-db",
    "dict-tuple-db",
    "dict-unix",
    "url-db-path",
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_every_documented_hosts_form_reaches_the_server(
    redis_server_factory: Callable[..., RedisServer], form: str, kind: str
) -> None:
    server = redis_server_factory(unix_socket=True)
    hosts = _host_forms(server)[form]
    layer: Any
    if kind == "redis":
        layer = RedisChannelLayer(hosts=hosts)
    else:
        layer = RedisPubSubChannelLayer(hosts=hosts)
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "hello", "form": form})
        assert await layer.receive(channel) == {"type": "hello", "form": form}
        if kind == "redis":
            await layer.send("named.queue", {"type": "queued"})
            # ``db`` (in the dict or the URL path) selects the database the keys live in.
            db = 3 if "db" in form else 0
            probe = sync_redis.Redis(port=server.port, db=db)
            try:
                assert probe.exists("asgi:named.queue") == 1
            finally:
                probe.close()
            assert await layer.receive("named.queue") == {"type": "queued"}
    finally:
        await layer.flush()
        await layer.close()


async def test_dict_hosts_pass_password_to_the_client(redis_server: RedisServer) -> None:
    admin = sync_redis.Redis(port=redis_server.port)
    admin.config_set("requirepass", "s3cret")
    admin.close()
    good = RedisChannelLayer(
        hosts=[{"address": f"redis://127.0.0.1:{redis_server.port}", "password": "s3cret"}]
    )
    url = RedisChannelLayer(hosts=[f"redis://:s3cret@127.0.0.1:{redis_server.port}/0"])
    bad = RedisChannelLayer(hosts=[("127.0.0.1", redis_server.port)])
    try:
        await good.send("auth.ok", {"type": "a"})
        assert await url.receive("auth.ok") == {"type": "a"}
        with pytest.raises(sync_redis.exceptions.AuthenticationError):
            await bad.send("auth.ok", {"type": "b"})
    finally:
        await good.flush()
        for layer in (good, url, bad):
            await layer.close()
        admin = sync_redis.Redis(port=redis_server.port, password="s3cret")
        admin.config_set("requirepass", "")
        admin.close()


def test_rediss_url_with_ssl_options_builds_a_tls_client() -> None:
    """The README's Heroku example: ``rediss://`` plus ``ssl_cert_reqs: None``."""
    from redis.asyncio.connection import SSLConnection

    layer = RedisChannelLayer(
        hosts=[{"address": "rediss://user:pw@127.0.0.1:6380", "ssl_cert_reqs": None}]
    )
    spec = layer.hosts[0]
    assert spec.url == "rediss://user:pw@127.0.0.1:6380"
    assert spec.kwargs == {"ssl_cert_reqs": None}

    async def pool_class() -> Any:
        state = layer._state()
        kind = state.clients[0].connection_pool.connection_class
        await layer.close_pools()
        return kind

    assert asyncio.run(pool_class()) is SSLConnection


async def test_encryption_keys_rotate_without_downtime(redis_server: RedisServer) -> None:
    """``symmetric_encryption_keys`` is a list of strings: the first encrypts, all decrypt."""
    old = RedisChannelLayer(hosts=[redis_server.url], symmetric_encryption_keys=["old-key" * 5])
    rotated = RedisChannelLayer(
        hosts=[redis_server.url], symmetric_encryption_keys=["new-key" * 5, "old-key" * 5]
    )
    new_only = RedisChannelLayer(
        hosts=[redis_server.url], symmetric_encryption_keys=["new-key" * 5]
    )
    try:
        await old.send("rotating", {"type": "written.with.old"})
        assert await rotated.receive("rotating") == {"type": "written.with.old"}
        await rotated.send("rotating", {"type": "written.with.new"})
        assert await new_only.receive("rotating") == {"type": "written.with.new"}
    finally:
        await old.flush()
        for layer in (old, rotated, new_only):
            await layer.close()


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_channel_capacity_globs_and_compiled_regexes(
    request: pytest.FixtureRequest, kind: str
) -> None:
    from channels.layers import InMemoryChannelLayer

    config: dict[str, Any] = {
        "capacity": 5,
        "channel_capacity": {
            "http.request": 2,
            "http.response!*": 1,
            re.compile(r"^websocket.send\!.+"): 3,
        },
    }
    layer: Any
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        layer = RedisChannelLayer(hosts=[server.url], **config)
    else:
        layer = InMemoryChannelLayer(**config)
    expected = {
        "http.request": 2,
        "websocket.send!abc": 3,
        "other": 5,
    }
    try:
        for channel, capacity in expected.items():
            assert layer.get_capacity(channel) == capacity
            for i in range(capacity):
                await layer.send(channel, {"i": i})
            with pytest.raises(ChannelFull):
                await layer.send(channel, {"i": "one too many"})
        assert layer.get_capacity("http.response!xyz") == 1
    finally:
        await layer.flush()
        await layer.close()


async def test_prefix_separates_layers_on_one_server(redis_server: RedisServer) -> None:
    first = RedisChannelLayer(hosts=[redis_server.url], prefix="site-a")
    second = RedisChannelLayer(hosts=[redis_server.url], prefix="site-b")
    try:
        await first.group_add("shared-name", "sink.a")
        await second.group_add("shared-name", "sink.b")
        await first.group_send("shared-name", {"type": "for.a"})
        await first.send("queue", {"type": "queued.a"})
        probe = sync_redis.Redis(port=redis_server.port, decode_responses=True)
        try:
            keys = sorted(str(k) for k in probe.keys("*"))
        finally:
            probe.close()
        assert keys and all(k.startswith(("site-a:", "site-b:")) for k in keys)
        assert await first.receive("sink.a") == {"type": "for.a"}
        await second.flush()  # only its own keys
        assert await first.receive("queue") == {"type": "queued.a"}
        assert await first.group_channels("shared-name") == ["sink.a"]
    finally:
        await first.flush()
        await first.close()
        await second.close()


async def test_group_expiry_removes_old_members(redis_server: RedisServer) -> None:
    clock = FakeClock()
    layer = RedisChannelLayer(hosts=[redis_server.url], group_expiry=10, expiry=60, clock=clock)
    try:
        await layer.group_add("expiring", "member.old")
        clock.advance(8)
        await layer.group_add("expiring", "member.new")
        clock.advance(5)  # old joined 13 s ago (> 10), new 5 s ago
        await layer.group_send("expiring", {"type": "tick"})
        assert await layer.receive("member.new") == {"type": "tick"}
        assert await layer.group_channels("expiring") == ["member.new"]
    finally:
        await layer.flush()
        await layer.close()


async def test_pubsub_on_disconnect_and_on_reconnect_reach_consumers(
    redis_server: RedisServer,
) -> None:
    """The documented pub/sub options: consumers get ``{"type": on_disconnect}`` and
    ``{"type": on_reconnect}`` so they can re-sync what they may have missed."""
    layer = RedisPubSubChannelLayer(
        hosts=[redis_server.url], on_disconnect="redis.disconnect", on_reconnect="redis.reconnect"
    )
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "before"})
        assert await layer.receive(channel) == {"type": "before"}
        redis_server.restart()
        async with asyncio.timeout(30):
            assert await layer.receive(channel) == {"type": "redis.disconnect"}
            assert await layer.receive(channel) == {"type": "redis.reconnect"}
            # Subscriptions are back: a publish reaches the channel again.
            while True:
                await layer.send(channel, {"type": "after"})
                message = await layer.receive(channel)
                if message == {"type": "after"}:
                    break
                assert message["type"] in ("redis.disconnect", "redis.reconnect")
    finally:
        await layer.close()


def test_pubsub_rejects_non_string_callbacks() -> None:
    with pytest.raises(TypeError, match="on_disconnect"):
        RedisPubSubChannelLayer(on_disconnect=print)  # type: ignore[arg-type]


def test_settings_written_for_channels_redis_build_through_the_manager(
    redis_server: RedisServer,
) -> None:
    from asgiref.sync import async_to_sync
    from django.test import override_settings

    from channels.layers import get_channel_layer

    config = {
        "hosts": [("127.0.0.1", redis_server.port)],
        "prefix": "asgi",
        "expiry": 30,
        "group_expiry": 3600,
        "capacity": 50,
        "channel_capacity": {"http.request": 200, re.compile(r"^websocket.send\!.+"): 20},
        "symmetric_encryption_keys": ["a-secret-key-with-enough-entropy-1234"],
    }
    pubsub_config = {
        "hosts": [f"redis://127.0.0.1:{redis_server.port}"],
        "prefix": "asgi",
        "on_disconnect": "redis.disconnect",
        "on_reconnect": "redis.reconnect",
    }
    layers = {
        "default": {"BACKEND": "channels.layers.redis.RedisChannelLayer", "CONFIG": config},
        "pubsub": {
            "BACKEND": "channels.layers.redis.RedisPubSubChannelLayer",
            "CONFIG": pubsub_config,
        },
    }
    with override_settings(CHANNEL_LAYERS=layers):
        layer = get_channel_layer()
        assert isinstance(layer, RedisChannelLayer)
        assert (layer.expiry, layer.group_expiry, layer.capacity) == (30, 3600, 50)
        assert layer.get_capacity("websocket.send!x") == 20
        async_to_sync(layer.send)("configured", {"type": "ok"})
        assert async_to_sync(layer.receive)("configured") == {"type": "ok"}
        pubsub = get_channel_layer("pubsub")
        assert isinstance(pubsub, RedisPubSubChannelLayer)
        assert pubsub.on_disconnect == "redis.disconnect"
    assert redis_server.client_count() == 0


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_rediss_url_talks_tls_to_a_real_server(
    redis_server_factory: Callable[..., RedisServer], kind: str
) -> None:
    server = redis_server_factory(tls=True)
    hosts = [{"address": f"rediss://127.0.0.1:{server.tls_port}", "ssl_cert_reqs": None}]
    layer: Any = (
        RedisChannelLayer(hosts=hosts) if kind == "redis" else RedisPubSubChannelLayer(hosts=hosts)
    )
    try:
        channel = await layer.new_channel()
        await layer.group_add("tls-group", channel)
        await layer.group_send("tls-group", {"type": "over.tls"})
        assert await layer.receive(channel) == {"type": "over.tls"}
        assert server.client_count() >= 1  # connected (through the TLS port)
    finally:
        await layer.flush()
        await layer.close()
    assert server.client_count() == 0


@pytest.mark.parametrize(
    "hosts", ["redis://127.0.0.1:6379", b"redis://127.0.0.1:6379", ("127.0.0.1", 6379)]
)
@pytest.mark.parametrize("layer_class", [RedisChannelLayer, RedisPubSubChannelLayer])
def test_one_host_not_in_a_list_is_a_clear_error(hosts: Any, layer_class: Any) -> None:
    """A bare URL (or one ``(host, port)`` pair) instead of a list is a common settings slip;
    it must not be read character by character as many shards."""
    with pytest.raises(ValueError, match="list of Redis hosts"):
        layer_class(hosts=hosts)
