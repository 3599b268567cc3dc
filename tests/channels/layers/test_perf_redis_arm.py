"""The Redis layer's fast paths: ``arm(channel, fut)`` (direct-feed contract 4) and the
one-reply group membership lookup, against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from channels.layers.redis import RedisChannelLayer
from channels.utils import dispatch_from, make_source
from tests.channels.layers.conftest import FakeClock
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def layer(redis_server: RedisServer, clock: FakeClock) -> AsyncIterator[RedisChannelLayer]:
    made = RedisChannelLayer(hosts=[redis_server.url], clock=clock, expiry=30)
    yield made
    await made.flush()
    await made.close()


async def test_arm_resolves_with_a_later_group_message(layer: RedisChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    fut: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    layer.arm(channel, fut)
    assert not fut.done()
    await layer.group_send("room", {"type": "hello", "n": 1})
    assert await asyncio.wait_for(fut, 10) == {"type": "hello", "n": 1}


async def test_arm_takes_a_pending_message_at_once(layer: RedisChannelLayer) -> None:
    channel = await layer.new_channel()
    first: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    layer.arm(channel, first)  # starts the reader
    await layer.send(channel, {"type": "a"})
    await layer.send(channel, {"type": "b"})
    assert (await asyncio.wait_for(first, 10))["type"] == "a"
    # "b" is buffered in the mailbox by now or soon; receive() must see it exactly once.
    assert (await asyncio.wait_for(layer.receive(channel), 10))["type"] == "b"
    second: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    layer.arm(channel, second)
    assert not second.done()


async def test_a_future_done_elsewhere_leaves_the_message_pending(
    layer: RedisChannelLayer,
) -> None:
    channel = await layer.new_channel()
    fut: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    layer.arm(channel, fut)
    fut.set_result({"type": "from another source"})
    await layer.send(channel, {"type": "kept"})
    assert (await asyncio.wait_for(layer.receive(channel), 10))["type"] == "kept"


async def test_arm_keeps_order_and_delivers_each_message_once(
    layer: RedisChannelLayer,
) -> None:
    channels = [await layer.new_channel() for _ in range(20)]
    for channel in channels:
        await layer.group_add("crowd", channel)
    got: dict[str, list[int]] = {c: [] for c in channels}
    everything = asyncio.get_running_loop().create_future()
    total = len(channels) * 30

    def collector(channel: str):  # type: ignore[no-untyped-def]
        async def dispatch(message: dict[str, int]) -> None:
            got[channel].append(message["i"])
            if sum(map(len, got.values())) == total and not everything.done():
                everything.set_result(None)

        return dispatch

    tasks = [
        asyncio.create_task(dispatch_from([make_source(layer, c)], collector(c))) for c in channels
    ]
    try:
        for i in range(30):
            await layer.group_send("crowd", {"type": "m", "i": i})
        await asyncio.wait_for(everything, 20)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert all(values == list(range(30)) for values in got.values())


async def test_arm_on_a_shared_channel_and_cancel_loses_nothing(
    layer: RedisChannelLayer,
) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[dict[str, object]] = loop.create_future()
    layer.arm("jobs", fut)
    await layer.send("jobs", {"type": "one"})
    assert (await asyncio.wait_for(fut, 10))["type"] == "one"
    abandoned: asyncio.Future[dict[str, object]] = loop.create_future()
    layer.arm("jobs", abandoned)
    abandoned.cancel()
    await layer.send("jobs", {"type": "two"})
    assert (await asyncio.wait_for(layer.receive("jobs"), 10))["type"] == "two"


async def test_arm_rejects_another_process_channel(layer: RedisChannelLayer) -> None:
    fut: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    with pytest.raises(ValueError, match="another process"):
        layer.arm("specific.someoneelse!abc", fut)


async def test_arm_respects_expiry(layer: RedisChannelLayer, clock: FakeClock) -> None:
    channel = await layer.new_channel()
    fut: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    layer.arm(channel, fut)
    fut.cancel()  # nobody listening: the next messages wait (in Redis or the mailbox)
    await layer.send(channel, {"type": "stale"})
    await layer.send(channel, {"type": "stale too"})
    clock.advance(31)  # past expiry, wherever they are
    fresh: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    layer.arm(channel, fresh)
    await layer.send(channel, {"type": "fresh"})
    assert (await asyncio.wait_for(fresh, 10))["type"] == "fresh"


async def test_group_members_in_one_reply(layer: RedisChannelLayer, clock: FakeClock) -> None:
    assert await layer.group_channels("nobody") == []
    await layer.group_add("g", "a.one")
    await layer.group_add("g", "b.two")
    assert sorted(await layer.group_channels("g")) == ["a.one", "b.two"]
    clock.advance(layer.group_expiry + 1)
    await layer.group_add("g", "c.three")
    assert await layer.group_channels("g") == ["c.three"]
