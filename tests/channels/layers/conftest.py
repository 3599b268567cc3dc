"""Fixtures for the channel layer tests: every layer kind, real Redis, a movable clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from channels.layers import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.support.redis import RedisServer, redis_sentinel, redis_server, redis_server_factory

__all__ = [
    "FakeClock",
    "LayerKit",
    "redis_sentinel",
    "redis_server",
    "redis_server_factory",
]


class FakeClock:
    """Wall-clock-like time that tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LayerKit:
    kind: str
    make: Callable[..., Any]
    clock: FakeClock
    # What the layer promises (the conformance tests skip what it does not).
    persistent: bool  # messages to a named channel wait in the layer until received
    raises_full: bool  # send() raises ChannelFull at capacity


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("pubsub", marks=pytest.mark.redis),
    ]
)
async def layer_kit(
    request: pytest.FixtureRequest,
) -> AsyncIterator[LayerKit]:
    kind: str = request.param
    clock = FakeClock()
    made: list[Any] = []
    server: RedisServer | None = None
    if kind != "memory":
        server = request.getfixturevalue("redis_server")

    def make(**options: Any) -> Any:
        options.setdefault("clock", clock)
        layer: Any
        if kind == "memory":
            layer = InMemoryChannelLayer(**options)
        elif kind == "redis":
            assert server is not None
            layer = RedisChannelLayer(hosts=[server.url], **options)
        else:
            assert server is not None
            layer = RedisPubSubChannelLayer(hosts=[server.url], **options)
        made.append(layer)
        return layer

    yield LayerKit(
        kind=kind,
        make=make,
        clock=clock,
        persistent=kind != "pubsub",
        raises_full=kind != "pubsub",
    )
    for layer in made:
        await layer.flush()
        await layer.close()
