"""Messages through the Redis layers: over a megabyte, not serialisable, and buffered per
process-local channel."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]


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
