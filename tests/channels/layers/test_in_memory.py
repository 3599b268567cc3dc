"""In-memory layer specifics: per-channel capacity, counted group drops, direct feed (arm)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from tests.channels.layers.conftest import FakeClock


async def test_channel_capacity_patterns_apply_per_channel() -> None:
    layer = InMemoryChannelLayer(
        capacity=5, channel_capacity={"http.request*": 2, re.compile(r"^slow\..*"): 1}
    )
    assert layer.get_capacity("http.request.abc") == 2
    assert layer.get_capacity("slow.worker") == 1
    assert layer.get_capacity("other") == 5
    await layer.send("http.request.abc", {"i": 0})
    await layer.send("http.request.abc", {"i": 1})
    with pytest.raises(ChannelFull):
        await layer.send("http.request.abc", {"i": 2})
    await layer.send("slow.worker", {"i": 0})
    with pytest.raises(ChannelFull):
        await layer.send("slow.worker", {"i": 1})
    for i in range(5):
        await layer.send("other", {"i": i})
    with pytest.raises(ChannelFull):
        await layer.send("other", {"i": 5})
    stats = layer.statistics()
    assert stats.channel_full == 3
    assert stats.buffered_messages == 8
    assert layer.channel_statistics("slow.worker").max_buffer_size == 1
    assert layer.channel_statistics("slow.worker").current_buffer_used == 1


def test_bad_capacity_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="channel_capacity"):
        InMemoryChannelLayer(channel_capacity={"x": 0})
    with pytest.raises(TypeError, match="glob strings or compiled regexes"):
        InMemoryChannelLayer(channel_capacity={3: 4})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="capacity"):
        InMemoryChannelLayer(capacity=0)
    with pytest.raises(ValueError, match="expiry"):
        InMemoryChannelLayer(expiry=0)


async def test_group_send_counts_and_logs_full_member(caplog: pytest.LogCaptureFixture) -> None:
    layer = InMemoryChannelLayer(capacity=5, channel_capacity={"member.full": 1})
    await layer.group_add("crowd", "member.full")
    await layer.group_add("crowd", "member.ok")
    await layer.send("member.full", {"type": "filler"})
    with caplog.at_level(logging.INFO, logger="channels.layers"):
        await layer.group_send("crowd", {"type": "news"})
        await layer.group_send("crowd", {"type": "more"})
    assert layer.group_full_count == 2
    assert layer.statistics().group_send_full == 2
    # channels_redis's line: once per call, at INFO, with the counts.
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [(logging.INFO, "1 of 2 channels over capacity in group crowd")] * 2
    # The other member was not affected.
    assert await layer.receive("member.ok") == {"type": "news"}
    assert await layer.receive("member.ok") == {"type": "more"}
    assert await layer.receive("member.full") == {"type": "filler"}


async def test_arm_hands_over_the_same_object() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    message = {"type": "payload", "data": bytearray(b"x" * 1000)}

    # Armed before the message arrives: send resolves the future directly.
    fut: asyncio.Future[dict[str, object]] = loop.create_future()
    layer.arm(channel, fut)
    assert not fut.done()
    await layer.send(channel, message)
    assert fut.done()
    assert fut.result() is message

    # Message pending before arm: resolved immediately, consuming it.
    await layer.send(channel, message)
    fut2: asyncio.Future[dict[str, object]] = loop.create_future()
    layer.arm(channel, fut2)
    assert fut2.result() is message
    assert layer.channel_statistics(channel).current_buffer_used == 0


async def test_arm_with_done_future_keeps_message_pending() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[dict[str, object]] = loop.create_future()
    layer.arm(channel, fut)
    fut.cancel()  # e.g. the consumer was woken by something else
    await layer.send(channel, {"type": "kept"})
    assert await layer.receive(channel) == {"type": "kept"}


async def test_arming_again_replaces_the_previous_future() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    first: asyncio.Future[dict[str, object]] = loop.create_future()
    second: asyncio.Future[dict[str, object]] = loop.create_future()
    layer.arm(channel, first)
    layer.arm(channel, second)
    await layer.send(channel, {"type": "one"})
    assert not first.done()
    assert second.result() == {"type": "one"}


async def test_receive_resolved_then_cancelled_puts_message_back() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    task = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # the task is now waiting on its future
    await layer.send(channel, {"type": "race"})  # resolves the future...
    task.cancel()  # ...and the task is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await layer.receive(channel) == {"type": "race"}


async def test_group_send_to_5000_members_without_tasks() -> None:
    layer = InMemoryChannelLayer()
    members = [await layer.new_channel() for _ in range(5000)]
    for channel in members:
        await layer.group_add("big", channel)
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[dict[str, object]]] = []
    for channel in members[:2500]:  # half the members wait (armed), half have nobody waiting
        fut: asyncio.Future[dict[str, object]] = loop.create_future()
        layer.arm(channel, fut)
        futures.append(fut)
    tasks_before = asyncio.all_tasks()
    message = {"type": "broadcast"}
    await layer.group_send("big", message)
    assert asyncio.all_tasks() == tasks_before  # no task per member
    assert all(f.result() is message for f in futures)
    for channel in members[2500:]:
        assert await layer.receive(channel) is message
    assert layer.statistics().sent == 5000


async def test_receive_creates_no_task() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    before = asyncio.all_tasks()
    await layer.send(channel, {"type": "x"})
    assert await layer.receive(channel) == {"type": "x"}
    assert asyncio.all_tasks() == before


async def test_group_membership_expires() -> None:
    clock = FakeClock()
    layer = InMemoryChannelLayer(group_expiry=10, clock=clock)
    await layer.group_add("g", "old.member")
    clock.advance(5)
    await layer.group_add("g", "new.member")
    clock.advance(6)
    await layer.group_send("g", {"type": "hi"})
    await layer.send("old.member", {"type": "sentinel"})
    assert await layer.receive("new.member") == {"type": "hi"}
    assert await layer.receive("old.member") == {"type": "sentinel"}


async def test_sweep_drops_stale_messages_of_idle_channels() -> None:
    clock = FakeClock()
    layer = InMemoryChannelLayer(expiry=10, clock=clock)
    for i in range(20):
        await layer.send(f"idle.{i}", {"i": i})
    assert layer.statistics().channels == 20
    clock.advance(11)
    await layer.send("active", {"type": "x"})  # any activity triggers the periodic sweep
    stats = layer.statistics()
    assert stats.channels == 1
    assert stats.expired == 20


async def test_flush_keeps_waiting_receivers_working() -> None:
    layer = InMemoryChannelLayer()
    waiting = asyncio.ensure_future(layer.receive("still.here"))
    await asyncio.sleep(0)
    await layer.flush()
    await layer.send("still.here", {"type": "after-flush"})
    assert await waiting == {"type": "after-flush"}
    assert layer.statistics().waiting_receivers == 0


async def test_send_from_another_threads_loop_wakes_the_receiver() -> None:
    """``async_to_sync(layer.send)`` from a plain thread runs on a temporary loop; the waiting
    receiver's future belongs to ours and must be resolved on it."""
    # Debug mode makes asyncio raise on non-thread-safe calls instead of working by luck.
    asyncio.get_running_loop().set_debug(True)
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)

    def from_thread() -> None:
        asyncio.run(layer.send(channel, {"type": "cross-thread"}))

    await asyncio.to_thread(from_thread)
    assert await asyncio.wait_for(waiting, 10) == {"type": "cross-thread"}


async def test_futures_resolved_elsewhere_do_not_pile_up() -> None:
    """The consumer arms the same future on the server and the layer; the server resolves it
    most of the time.  The layer must not keep one stale future per message."""
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    for n in range(1000):
        fut: asyncio.Future[dict[str, object]] = loop.create_future()
        layer.arm(channel, fut)
        fut.set_result({"type": "from.server", "n": n})  # the other source won
    assert len(layer.channels[channel].waiters) <= 1
    last: asyncio.Future[dict[str, object]] = loop.create_future()
    layer.arm(channel, last)
    await layer.send(channel, {"type": "from.layer"})
    assert last.result() == {"type": "from.layer"}


OPS = st.lists(st.sampled_from(["send", "recv", "arm", "cancel", "tick"]), max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_every_message_is_delivered_exactly_once(ops: list[str]) -> None:
    """Any interleaving of sends, receives, armed futures, cancellations and loop turns: each
    message ends up with exactly one receiver (or still buffered), never lost or doubled."""

    async def scenario() -> None:
        layer = InMemoryChannelLayer(capacity=1000)
        channel = await layer.new_channel()
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[dict[str, object]]] = []
        sent = 0
        for op in ops:
            if op == "send":
                await layer.send(channel, {"n": sent})
                sent += 1
            elif op == "recv":
                waiting.append(asyncio.ensure_future(layer.receive(channel)))
            elif op == "arm":
                fut: asyncio.Future[dict[str, object]] = loop.create_future()
                layer.arm(channel, fut)
                waiting.append(fut)
            elif op == "cancel":
                pending = [w for w in waiting if not w.done()] or waiting
                if pending:
                    pending[0].cancel()
            else:
                await asyncio.sleep(0)
        for w in waiting:
            w.cancel()  # a resolved-but-not-resumed receive puts its message back
        await asyncio.gather(*waiting, return_exceptions=True)
        got: list[Any] = [w.result()["n"] for w in waiting if not w.cancelled()]
        while layer.channel_statistics(channel).current_buffer_used:
            got.append((await layer.receive(channel))["n"])
        assert sorted(got) == list(range(sent))

    asyncio.run(scenario())


def test_unknown_options_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="channels.layers"):
        layer = InMemoryChannelLayer(capacty=5)
    assert layer.capacity == 100
    assert "capacty" in caplog.text
