"""Drop-in review of the in-memory layer: settings keys, and use from sync code through
``async_to_sync`` (each call from a plain thread runs on its own short-lived event loop, while
consumers wait on another loop)."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from tests.channels.layers.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)


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
