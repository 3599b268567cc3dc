"""In-memory layer specifics: per-channel capacity, counted group drops, direct feed (arm),
settings keys, and use from sync code through ``async_to_sync`` (each call from a plain thread
runs on its own short-lived event loop, while consumers wait on another loop)."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
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


@pytest.mark.timeout(60)
def test_config_keys_from_channel_layers_setting() -> None:
    layers = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {
                "expiry": 5,
                "group_expiry": 10,
                "capacity": 2,
                "channel_capacity": {"small.*": 1, re.compile(r"^big\..+"): 4},
            },
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        assert (layer.expiry, layer.group_expiry, layer.capacity) == (5, 10, 2)
        assert [layer.get_capacity(c) for c in ("small.a", "big.b", "other")] == [1, 4, 2]
        send = async_to_sync(layer.send)
        send("small.a", {"n": 1})
        with pytest.raises(ChannelFull):
            send("small.a", {"n": 2})
        for n in range(4):
            send("big.b", {"n": n})
        with pytest.raises(ChannelFull):
            send("big.b", {"n": 4})
        async_to_sync(layer.flush)()
        assert layer.statistics().buffered_messages == 0


@pytest.mark.timeout(60)
async def test_expiry_and_group_expiry_keys_are_honoured() -> None:
    clock = FakeClock()
    layer = InMemoryChannelLayer(expiry=5, group_expiry=10, clock=clock)
    await layer.group_add("g", "member.old")
    clock.advance(6)
    await layer.group_add("g", "member.new")
    await layer.send("stale", {"type": "old"})
    clock.advance(5)  # "stale" sent 5 s ago (= expiry), member.old joined 11 s ago
    await layer.group_send("g", {"type": "tick"})
    assert await layer.receive("member.new") == {"type": "tick"}
    assert list(layer.groups["g"]) == ["member.new"]
    await layer.send("stale", {"type": "fresh"})
    assert await layer.receive("stale") == {"type": "fresh"}


@pytest.mark.timeout(60)
def test_sync_threads_exchange_messages_through_async_to_sync() -> None:
    """Several sync senders and one sync receiver, every call on its own loop: every message
    arrives exactly once and nothing raises."""
    layer = InMemoryChannelLayer(capacity=1000)
    senders, per_sender = 4, 50
    received: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def receive_all() -> None:
        try:
            for _ in range(senders * per_sender):
                message = async_to_sync(layer.receive)("sync.inbox")
                received.append((message["sender"], message["n"]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def send_some(sender: int) -> None:
        try:
            for n in range(per_sender):
                async_to_sync(layer.send)("sync.inbox", {"sender": sender, "n": n})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=receive_all)]
    threads += [threading.Thread(target=send_some, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sorted(received) == [(s, n) for s in range(senders) for n in range(per_sender)]
    for sender in range(senders):  # per-sender order is kept
        assert [n for s, n in received if s == sender] == list(range(per_sender))


def broadcast_view(layer: InMemoryChannelLayer, n: int) -> None:
    """A sync view: ``async_to_sync`` from a worker thread, on a loop of its own."""
    async_to_sync(layer.group_send)("room", {"type": "chat.message", "n": n})


@pytest.mark.timeout(60)
async def test_sync_view_group_send_wakes_consumers_waiting_on_another_loop() -> None:
    # Debug mode makes asyncio raise on calls from the wrong thread instead of passing by luck.
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    layer = InMemoryChannelLayer()
    armed_channel = await layer.new_channel()
    waiting_channel = await layer.new_channel()
    await layer.group_add("room", armed_channel)
    await layer.group_add("room", waiting_channel)
    for n in range(3):
        armed: asyncio.Future[dict[str, Any]] = loop.create_future()
        layer.arm(armed_channel, armed)
        waiting = asyncio.ensure_future(layer.receive(waiting_channel))
        await asyncio.sleep(0)  # the receive is now waiting on its future
        await asyncio.to_thread(broadcast_view, layer, n)
        async with asyncio.timeout(10):
            assert await armed == {"type": "chat.message", "n": n}
            assert await waiting == {"type": "chat.message", "n": n}
    assert layer.statistics().waiting_receivers == 0


@pytest.mark.timeout(60)
async def test_receiver_on_an_abandoned_loop_does_not_break_senders() -> None:
    """A thread's loop closed with a receive still pending (never cancelled) leaves a future
    nobody will read: a later send must neither raise nor lose the message into it."""
    layer = InMemoryChannelLayer()
    pending: list[asyncio.Task[Any]] = []

    def abandon(channel: str) -> None:
        other = asyncio.new_event_loop()
        pending.append(other.create_task(layer.receive(channel)))
        other.run_until_complete(asyncio.sleep(0))
        other.close()  # without cancelling the receive

    await asyncio.to_thread(abandon, "orphaned")
    await layer.send("orphaned", {"type": "kept"})
    async with asyncio.timeout(10):
        assert await layer.receive("orphaned") == {"type": "kept"}
    await layer.group_add("orphans", "orphaned.member")
    await asyncio.to_thread(abandon, "orphaned.member")
    await layer.group_send("orphans", {"type": "also.kept"})
    async with asyncio.timeout(10):
        assert await layer.receive("orphaned.member") == {"type": "also.kept"}
    # The abandoned tasks belong to closed loops: drop them quietly.
    for task in pending:
        task._log_destroy_pending = False  # type: ignore[attr-defined]
    pending.clear()


@pytest.mark.timeout(60)
def test_send_from_another_thread_between_take_and_wait_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sync code on two threads: the receiver finds the channel empty and is about to wait
    when the sender's message lands (the GIL can switch threads right there).  The message
    must wake that receiver, not sit in the buffer while it waits forever."""
    from channels.layers import in_memory

    layer = InMemoryChannelLayer()
    original_take = in_memory.Mailbox.take
    sender_done = threading.Event()

    def send_and_signal() -> None:
        async_to_sync(layer.send)("raced", {"type": "in.between"})
        sender_done.set()

    def send_in_between(box: in_memory.Mailbox, now: float) -> tuple[Any, int]:
        result = original_take(box, now)
        if not sender_done.is_set():
            sender = threading.Thread(target=send_and_signal)
            sender.start()
            # Give the other thread the chance the scheduler could give it.  With the take
            # and the wait made atomic the sender blocks until we wait; don't deadlock on it.
            sender_done.wait(0.5)
        return result

    monkeypatch.setattr(in_memory.Mailbox, "take", send_in_between)

    async def receive() -> Any:
        async with asyncio.timeout(5):
            return await layer.receive("raced")

    assert async_to_sync(receive)() == {"type": "in.between"}
    assert sender_done.wait(5)
