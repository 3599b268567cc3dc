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
from tests.support.redis_cluster import RedisCluster, redis_cluster, shared_redis_cluster

__all__ = [
    "FakeClock",
    "LayerKit",
    "redis_cluster",
    "redis_sentinel",
    "redis_server",
    "redis_server_factory",
    "shared_redis_cluster",
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

    @property
    def layer(self) -> str:
        """Which layer ("memory", "redis" or "pubsub"), on one Redis or on a cluster."""
        return self.kind.removesuffix("-cluster")


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("pubsub", marks=pytest.mark.redis),
        # Redis Cluster (3 primaries + 3 replicas, started once per session).
        pytest.param("redis-cluster", marks=pytest.mark.redis),
        pytest.param("pubsub-cluster", marks=pytest.mark.redis),
    ]
)
async def layer_kit(
    request: pytest.FixtureRequest,
) -> AsyncIterator[LayerKit]:
    kind: str = request.param
    clock = FakeClock()
    made: list[Any] = []
    hosts: list[str] = []
    if kind.endswith("-cluster"):
        cluster: RedisCluster = request.getfixturevalue("shared_redis_cluster")
        hosts = [cluster.url.replace("redis://", "redis+cluster://")]
    elif kind != "memory":
        server: RedisServer = request.getfixturevalue("redis_server")
        hosts = [server.url]

    def make(**options: Any) -> Any:
        options.setdefault("clock", clock)
        layer: Any
        if kind == "memory":
            layer = InMemoryChannelLayer(**options)
        elif kind.startswith("redis"):
            layer = RedisChannelLayer(hosts=hosts, **options)
        else:
            layer = RedisPubSubChannelLayer(hosts=hosts, **options)
        made.append(layer)
        return layer

    yield LayerKit(
        kind=kind,
        make=make,
        clock=clock,
        persistent=not kind.startswith("pubsub"),
        raises_full=not kind.startswith("pubsub"),
    )
    for layer in made:
        await layer.flush()
        await layer.close()
