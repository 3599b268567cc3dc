"""The consumer receive loop (shared contract 4): one future per wait armed on every source,
no task or queue hop per message, nothing lost or reordered when both sources fire."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.utils import PumpedSource, await_many_dispatch, dispatch_from, make_source


class ArmableQueue:
    """A fake server ``receive`` implementing the contract: ``__call__`` and ``arm(fut)``."""

    def __init__(self) -> None:
        self.pending: deque[dict[str, Any]] = deque()
        self.armed: asyncio.Future[Any] | None = None
        self.arm_calls = 0

    def push(self, message: dict[str, Any]) -> None:
        fut = self.armed
        if fut is not None and not fut.done():
            self.armed = None
            fut.set_result(message)
        else:
            self.pending.append(message)  # the contract: keep it for the next call/arm

    def arm(self, fut: asyncio.Future[Any]) -> None:
        self.arm_calls += 1
        if self.pending:
            fut.set_result(self.pending.popleft())
        else:
            self.armed = fut

    async def __call__(self) -> dict[str, Any]:
        fut = asyncio.get_running_loop().create_future()
        self.arm(fut)
        return await fut  # type: ignore[no-any-return]


class ArmableLayer:
    """A fake layer offering ``arm(channel, fut)`` for one channel."""

    def __init__(self) -> None:
        self.queue = ArmableQueue()

    def arm(self, channel: str, fut: asyncio.Future[Any]) -> None:
        assert channel == "chan!1"
        self.queue.arm(fut)


async def test_both_sources_fire_nothing_lost_and_per_source_order_kept() -> None:
    server, layer = ArmableQueue(), ArmableLayer()
    seen: list[tuple[str, int]] = []

    async def dispatch(message: dict[str, Any]) -> None:
        seen.append((message["src"], message["n"]))
        if len(seen) == 40:
            raise StopConsumer

    # Both sources have work before the loop even starts, and more arrives while it runs.
    for n in range(10):
        server.push({"src": "server", "n": n})
        layer.queue.push({"src": "layer", "n": n})
    sources = [make_source(server), make_source(layer, "chan!1")]
    runner = asyncio.ensure_future(dispatch_from(sources, dispatch))
    await asyncio.sleep(0)
    for n in range(10, 20):
        # Fire both in the same tick: the second finds the future already done and keeps it.
        server.push({"src": "server", "n": n})
        layer.queue.push({"src": "layer", "n": n})
        await asyncio.sleep(0)
    with pytest.raises(StopConsumer):
        await runner
    assert [n for s, n in seen if s == "server"] == list(range(20))
    assert [n for s, n in seen if s == "layer"] == list(range(20))


async def test_armable_sources_create_no_task_per_message() -> None:
    server, layer = ArmableQueue(), ArmableLayer()
    count = 0
    tasks_during: set[int] = set()

    async def dispatch(message: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        tasks_during.add(len(asyncio.all_tasks()))
        if count == 200:
            raise StopConsumer

    runner = asyncio.ensure_future(
        dispatch_from([make_source(server), make_source(layer, "chan!1")], dispatch)
    )
    for n in range(100):
        server.push({"n": n})
        layer.queue.push({"n": n})
        await asyncio.sleep(0)
    with pytest.raises(StopConsumer):
        await runner
    # Only the test task and the runner exist throughout: no pump, no per-message task.
    assert tasks_during == {2}


async def test_busy_source_does_not_starve_the_other() -> None:
    server, layer = ArmableQueue(), ArmableLayer()
    for n in range(50):
        server.push({"src": "server", "n": n})
    layer.queue.push({"src": "layer", "n": 0})
    seen: list[str] = []

    async def dispatch(message: dict[str, Any]) -> None:
        seen.append(message["src"])
        if message["src"] == "layer":
            raise StopConsumer

    with pytest.raises(StopConsumer):
        await dispatch_from([make_source(server), make_source(layer, "chan!1")], dispatch)
    assert len(seen) <= 3  # the layer's message is served within one alternation


async def test_cancelled_wait_keeps_the_message_for_the_next_arm() -> None:
    server = ArmableQueue()
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    server.arm(fut)
    fut.cancel()
    server.push({"n": 1})
    assert await server() == {"n": 1}


async def test_pumped_source_is_one_long_lived_task_with_backpressure() -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    calls = 0

    async def plain_receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return await queue.get()

    source = make_source(plain_receive)
    assert isinstance(source, PumpedSource)
    for n in range(5):
        queue.put_nowait({"n": n})
    got = []
    before = len(asyncio.all_tasks())
    for _ in range(5):
        fut = asyncio.get_running_loop().create_future()
        source.arm(fut)
        got.append((await fut)["n"])
        assert len(asyncio.all_tasks()) == before + 1  # the single pump
    assert got == [0, 1, 2, 3, 4]
    await asyncio.sleep(0)
    # The pump holds at most one message it could not hand over: it never drains the queue.
    assert calls <= 6
    await source.close()
    assert len(asyncio.all_tasks()) == before


async def test_pumped_source_error_reaches_the_consumer() -> None:
    async def broken() -> dict[str, Any]:
        raise RuntimeError("source broke")

    async def dispatch(message: dict[str, Any]) -> None:
        raise AssertionError("no message expected")

    with pytest.raises(RuntimeError, match="source broke"):
        await await_many_dispatch([broken], dispatch)


class Recorder(AsyncConsumer):
    received: list[dict[str, Any]]

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.received = []
        await self.send({"type": "websocket.accept"})
        await self.send({"type": "websocket.send", "text": self.channel_name})

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        await self.send({"type": "websocket.send", "text": "server:" + message["text"]})

    async def layer_note(self, message: dict[str, Any]) -> None:
        await self.send({"type": "websocket.send", "text": "layer:" + message["text"]})

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        raise StopConsumer


async def test_consumer_with_real_in_memory_layer_and_armable_receive() -> None:
    layer = InMemoryChannelLayer()
    channel_layers.set("default", layer)
    server = ArmableQueue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(Recorder()({"type": "websocket"}, server, sent.put))
    server.push({"type": "websocket.connect"})
    assert (await sent.get())["type"] == "websocket.accept"
    channel = (await sent.get())["text"]
    baseline = len(asyncio.all_tasks())
    for n in range(20):
        server.push({"type": "websocket.receive", "text": str(n)})
        await layer.send(channel, {"type": "layer.note", "text": str(n)})
    texts = [(await sent.get())["text"] for _ in range(40)]
    assert [t for t in texts if t.startswith("server:")] == [f"server:{n}" for n in range(20)]
    assert [t for t in texts if t.startswith("layer:")] == [f"layer:{n}" for n in range(20)]
    assert len(asyncio.all_tasks()) == baseline  # still no pump task: both sources armable
    server.push({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)


async def test_consumer_falls_back_to_pumps_for_plain_callables() -> None:
    """asgiref's communicator gives a plain ``Queue.get``: one pump per source, not per message."""
    layer = InMemoryChannelLayer()
    channel_layers.set("default", layer)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(Recorder()({"type": "websocket"}, inbox.get, sent.put))
    inbox.put_nowait({"type": "websocket.connect"})
    await sent.get()
    channel = (await sent.get())["text"]
    counts = set()
    for n in range(10):
        inbox.put_nowait({"type": "websocket.receive", "text": str(n)})
        await layer.send(channel, {"type": "layer.note", "text": str(n)})
        await sent.get()
        await sent.get()
        counts.add(len(asyncio.all_tasks()))
    assert len(counts) == 1  # constant task count while messages flow
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["server", "layer", "tick", "cancel"]), min_size=1, max_size=60))
def test_any_interleaving_loses_nothing_and_keeps_per_source_order(script: list[str]) -> None:
    """Random arrival orders, scheduling points and cancelled waits: every message is
    dispatched exactly once, in its source's order."""

    async def scenario() -> None:
        server, layer = ArmableQueue(), ArmableLayer()
        counters = {"server": 0, "layer": 0}
        seen: dict[str, list[int]] = {"server": [], "layer": []}

        async def dispatch(message: dict[str, Any]) -> None:
            seen[message["src"]].append(message["n"])

        sources = [make_source(server), make_source(layer, "chan!1")]
        runner = asyncio.ensure_future(dispatch_from(sources, dispatch))
        for step in script:
            if step == "tick":
                await asyncio.sleep(0)
            elif step == "cancel":
                # The consumer goes away while waiting and a new one takes over the same
                # sources: whatever arrives later must reach the new one.  (A message already
                # handed to a consumer that is cancelled before it resumes goes down with that
                # consumer, as with any asyncio receive; let it resume first.)
                await asyncio.sleep(0)
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
                runner = asyncio.ensure_future(dispatch_from(sources, dispatch))
            else:
                queue = server if step == "server" else layer.queue
                queue.push({"src": step, "n": counters[step]})
                counters[step] += 1
        total = counters["server"] + counters["layer"]
        for _ in range(total + 2):  # each scheduling pass dispatches at least one message
            if len(seen["server"]) + len(seen["layer"]) == total:
                break
            await asyncio.sleep(0)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        assert seen["server"] == list(range(counters["server"]))
        assert seen["layer"] == list(range(counters["layer"]))

    asyncio.run(scenario())
