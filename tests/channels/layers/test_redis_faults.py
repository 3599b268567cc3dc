"""Redis restarted in the middle of traffic, for both Redis layers.

A producer sends (``send`` to a named channel, ``group_send`` to a group of process-local
channels) every few milliseconds while consumers receive, and redis-server is stopped and started
again on the same port.  What must hold:

* during the outage every ``send``/``group_send`` ends within ``command_timeout`` with a clear
  Redis ``ConnectionError``/``TimeoutError`` (nothing hangs, nothing else escapes);
* the layer reconnects by itself: no consumer is restarted, nothing is re-created by the test;
* delivery resumes within a second of Redis being back: every consumer receives a message sent
  after the restart, awaited with that bound.

The list layer runs against a Redis with an append-only file (what a production Redis holding
group memberships runs with): without persistence a restart forgets every group, by design.  The
pub/sub layer keeps its groups in the process and re-subscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(60)]

COMMAND_TIMEOUT = 2.0  # the layers' bound, lowered so that a hang shows within the test
RESUME_WITHIN = 1.0  # seconds after Redis is back by which every consumer has a new message
OUTAGE = 3.0  # long enough for the reconnect backoffs to reach their cap
GROUP = "faults"


@dataclass
class Traffic:
    """What the producer did: per call, how long it took and how it ended."""

    sent: int = 0  # sequence number of the next message
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    slowest: float = 0.0
    unexpected: list[BaseException] = field(default_factory=list)
    failed: asyncio.Event = field(default_factory=asyncio.Event)


async def produce(layer: Any, named: str, traffic: Traffic, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        for call, target in ((layer.send, named), (layer.group_send, GROUP)):
            seq = traffic.sent
            traffic.sent += 1
            started = loop.time()
            try:
                await call(target, {"type": "tick", "seq": seq})
            except (RedisConnectionError, RedisTimeoutError) as exc:
                traffic.errors.append(f"{type(exc).__name__}: {exc}")
                traffic.failed.set()
            except Exception as exc:  # anything else is a failure of the test
                traffic.unexpected.append(exc)
            else:
                traffic.ok += 1
            traffic.slowest = max(traffic.slowest, loop.time() - started)
        # Pace: about a hundred messages a second, but end promptly when told.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.01)


class Consumers:
    """Receive loops on ``channels``; ``reached(seq)`` waits until each one received a
    message numbered ``seq`` or later."""

    def __init__(self, layer: Any, channels: list[str]) -> None:
        self.latest = dict.fromkeys(channels, -1)
        self.changed = asyncio.Event()
        self.tasks = [asyncio.create_task(self._loop(layer, ch)) for ch in channels]

    async def _loop(self, layer: Any, channel: str) -> None:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == "tick":
                self.latest[channel] = max(self.latest[channel], message["seq"])
                self.changed.set()

    async def reached(self, seq: int) -> None:
        while min(self.latest.values()) < seq:
            for task in self.tasks:
                if task.done():
                    task.result()  # a consumer died: show why
            self.changed.clear()
            await self.changed.wait()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def restart_mid_traffic(
    server: RedisServer, make_layer: Callable[[], Any], consumer_channels: int = 5
) -> Traffic:
    producer_layer, consumer_layer = make_layer(), make_layer()
    for layer in (producer_layer, consumer_layer):
        layer.command_timeout = COMMAND_TIMEOUT
    loop = asyncio.get_running_loop()
    named = "faults.named"
    channels = [await consumer_layer.new_channel() for _ in range(consumer_channels)]
    for channel in channels:
        await consumer_layer.group_add(GROUP, channel)
    consumers = Consumers(consumer_layer, [named, *channels])
    traffic = Traffic()
    stop = asyncio.Event()
    producer = asyncio.create_task(produce(producer_layer, named, traffic, stop))
    try:
        async with asyncio.timeout(10):
            await consumers.reached(0)  # traffic flows before the fault
        port = server.port
        await asyncio.to_thread(server.stop)
        errors_before = len(traffic.errors)
        async with asyncio.timeout(10):  # the producer keeps going and fails promptly
            while len(traffic.errors) < errors_before + 4:
                traffic.failed.clear()
                await traffic.failed.wait()
        await asyncio.sleep(OUTAGE)  # the outage itself: nothing to await
        await asyncio.to_thread(server.start)  # returns once redis logs "Ready"
        back = loop.time()
        if server.port != port:
            pytest.skip("the Redis port was taken while it was down; cannot restart in place")
        first_after = traffic.sent
        try:
            async with asyncio.timeout(RESUME_WITHIN):
                await consumers.reached(first_after)
        except TimeoutError:
            pytest.fail(
                f"delivery did not resume within {RESUME_WITHIN} s of Redis being back: "
                f"latest per consumer {consumers.latest}, first sent after restart "
                f"{first_after}, sent {traffic.sent}"
            )
        resumed_after = loop.time() - back
    finally:
        stop.set()
        await producer
        await consumers.close()
        for layer in (producer_layer, consumer_layer):
            await layer.close()
    assert traffic.unexpected == []
    assert traffic.errors, "the outage was never noticed by the producer"
    # Nothing waits past the command timeout (plus scheduling slack on a busy machine).
    assert traffic.slowest < COMMAND_TIMEOUT + 0.5, traffic.slowest
    logging.getLogger(__name__).info(
        "resumed %.3f s after restart; %d ok, %d errors",
        resumed_after,
        traffic.ok,
        len(traffic.errors),
    )
    return traffic


async def test_list_layer_rides_out_a_redis_restart(
    redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="channels.layers")  # retry warnings are expected
    server = redis_server_factory(persistent=True)
    traffic = await restart_mid_traffic(server, lambda: RedisChannelLayer(hosts=[server.url]))
    assert any("Connection" in e or "connect" in e for e in traffic.errors), traffic.errors[:3]


async def test_pubsub_layer_rides_out_a_redis_restart(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="channels.layers")
    traffic = await restart_mid_traffic(
        redis_server, lambda: RedisPubSubChannelLayer(hosts=[redis_server.url])
    )
    assert any("Connection" in e or "connect" in e for e in traffic.errors), traffic.errors[:3]
