"""A consumer's channel state goes when the consumer does: memory stays flat under churn.

Many chat consumers (group_add on connect, group_discard on disconnect, one message each)
connect and close; afterwards the layer must hold nothing for any of them: no mailbox, no
group entry, no subscription.  Measured with object counts and tracemalloc, never RSS.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from channels import DEFAULT_CHANNEL_LAYER
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.layers.mailbox import Mailbox
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from channels.routing import ChannelNameRouter
from channels.testing import WebsocketCommunicator
from channels.worker import Worker
from tests.channels.layers.conftest import FakeClock, LayerKit
from tests.support.live import serve
from tests.support.redis import RedisServer

pytestmark = pytest.mark.timeout(120)

ALIAS = "lifetime"
ROOM = "lifetime-room"


class ChatConsumer(AsyncWebsocketConsumer):
    """The tutorial's shape: join the room on connect, leave it on disconnect."""

    channel_layer_alias = ALIAS

    async def connect(self) -> None:
        await self.channel_layer.group_add(ROOM, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(ROOM, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(ROOM, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


def mailbox_count() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Mailbox)


def future_count() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, asyncio.Future))


@pytest.fixture
def installed(layer_kit: LayerKit) -> Iterator[Any]:
    """The kit's layer installed under ALIAS, for consumers to find."""
    layer = layer_kit.make()
    old = channel_layers.set(ALIAS, layer)
    try:
        yield layer
    finally:
        channel_layers.backends.pop(ALIAS, None)
        if old is not None:
            channel_layers.set(ALIAS, old)


def held(layer: Any) -> dict[str, int]:
    """Everything a layer keeps per channel in this process."""
    counts = {"mailboxes": len(layer._mailboxes.boxes)}
    if hasattr(layer, "_groups"):
        counts["groups"] = len(layer._groups)
    if hasattr(layer, "_memberships"):
        counts["memberships"] = len(layer._memberships)
    if hasattr(layer, "_joined"):
        counts["memberships"] = len(layer._joined)
    if hasattr(layer, "_topics"):
        counts["subscriptions"] = sum(len(t) for t in layer._topics.values())
    return counts


async def chat_round(count: int) -> None:
    """``count`` consumers, 25 at a time: connect, say one thing, hear it back, close."""
    for start in range(0, count, 25):
        comms = [WebsocketCommunicator(ChatConsumer.as_asgi(), "/chat/") for _ in range(25)]
        for comm in comms:
            connected, _ = await comm.connect()
            assert connected
        await comms[0].send_to(text_data=f"hello {start}")
        for comm in comms:  # every member of the room hears it: the channels were live
            assert await comm.receive_from() == f"hello {start}"
        for comm in comms:
            await comm.disconnect()


async def test_closed_consumers_leave_nothing_behind(installed: Any, layer_kit: LayerKit) -> None:
    layer = installed
    await chat_round(25)  # warm-up: connections, scripts, lazily built caches
    baseline, boxes_before, futures_before = held(layer), mailbox_count(), future_count()
    await chat_round(500)
    assert held(layer) == baseline
    assert mailbox_count() == boxes_before
    # Not one Future per closed connection (the issue counted +2,001 after 2,000).
    assert future_count() - futures_before < 25
    # Released channels are remembered for one expiry (to discard late messages), no longer.
    layer_kit.clock.advance(layer.expiry + 1)
    await layer.new_channel()
    assert layer._mailboxes.released == {}
    if layer_kit.layer == "redis":
        # The room's sorted set is empty again (Redis deletes an empty key).
        state = layer._state()
        assert await state.clients[layer._shard(ROOM)].exists(layer._group_key(ROOM)) == 0


async def test_real_server_churn_leaves_nothing_behind(installed: Any) -> None:
    """The same over real sockets: our server, a real WebSocket client, 300 connections."""
    from websockets.asyncio.client import connect

    layer = installed
    async with serve(ChatConsumer.as_asgi()) as srv:

        async def visit(n: int) -> None:
            # max_queue=None: a visitor that stopped reading the room's chatter must not
            # stall its own closing handshake behind TCP backpressure.
            async with connect(f"{srv.ws_url}/chat/", max_queue=None) as ws:
                await ws.send(f"hi {n}")
                while await ws.recv() != f"hi {n}":  # others in the room talk too
                    pass

        baseline = dict.fromkeys(held(layer), 0)
        for start in range(0, 300, 20):
            await asyncio.gather(*(visit(n) for n in range(start, start + 20)))
        # Server side, each consumer finishes after its client closed: wait until all did.
        await srv.state.wait_idle()
        while srv.state.tasks:
            await asyncio.wait(list(srv.state.tasks))
        # Most of them died on a send to their departed client (the server raises, as ASGI
        # allows) before their disconnect handler ran: releasing their channels left the
        # room for them.
        assert held(layer) == baseline
        if hasattr(layer, "_state"):
            state = layer._state()
            assert await state.clients[layer._shard(ROOM)].exists(layer._group_key(ROOM)) == 0


async def test_memory_per_closed_connection_is_flat(installed: Any, layer_kit: LayerKit) -> None:
    """tracemalloc over the layer and consumer code: 500 more closed connections allocate no
    lasting memory there (a leak of even 100 bytes each would show as 50 kB)."""
    if layer_kit.kind != "memory":
        pytest.skip("the object counts above cover the Redis layers; one tracemalloc run is enough")
    layer = installed

    async def round_then_expiry(count: int) -> None:
        await chat_round(count)
        # Released channels are remembered for one expiry (late messages are discarded):
        # let that pass, and let an operation sweep.
        layer_kit.clock.advance(layer.expiry + 1)
        await layer.new_channel()
        gc.collect()

    await round_then_expiry(50)
    tracemalloc.start()
    try:
        await round_then_expiry(50)
        before = tracemalloc.take_snapshot()
        await round_then_expiry(500)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # The layers and the direct-feed glue.  (Not consumer.py: the handler-name strings it
    # builds per message are held by CPython's type attribute cache, a fixed-size table.)
    ours = [
        tracemalloc.Filter(True, "*/channels/layers/*"),
        tracemalloc.Filter(True, "*/channels/utils.py"),
    ]
    grown = sum(
        stat.size_diff
        for stat in after.filter_traces(ours).compare_to(before.filter_traces(ours), "filename")
    )
    assert grown < 4 * 1024, f"{grown} bytes more after 500 closed connections"


async def test_released_channel_keeps_nothing_and_late_messages_expire(
    layer_kit: LayerKit,
) -> None:
    """Release drops the mailbox with what it buffered; a message that arrives for a released
    channel later (a stale group member) is swept with the mailbox once it expires."""
    layer = layer_kit.make(expiry=5)
    channel = await layer.new_channel()
    fut = asyncio.get_running_loop().create_future()
    layer.arm(channel, fut)
    await layer.send(channel, {"type": "first"})
    assert await fut == {"type": "first"}
    await layer.send(channel, {"type": "unread"})
    if layer_kit.kind != "memory":
        # Over Redis the message reaches this process's mailbox through the reader: wait for
        # it with a second channel's message sent after it (same list, FIFO).
        marker = await layer.new_channel()
        await layer.send(marker, {"type": "marker"})
        assert await layer.receive(marker) == {"type": "marker"}
    assert channel in layer._mailboxes
    await layer.release_channel(channel)
    assert channel not in layer._mailboxes
    assert held(layer)["mailboxes"] == 0

    if not layer_kit.persistent:
        return  # pub/sub: the released channel is unsubscribed, nothing can arrive for it

    async def settle() -> None:
        if layer_kit.layer == "redis":  # through the reader: a later message on the same list
            marker = await layer.new_channel()
            await layer.send(marker, {"type": "marker"})
            assert await layer.receive(marker) == {"type": "marker"}

    # Sent before its consumer left (still in flight): discarded, no new mailbox.
    await layer.send(channel, {"type": "in-flight"})
    await settle()
    assert channel not in layer._mailboxes
    # Much later (a stale group member elsewhere): buffered like any message, then swept.
    layer_kit.clock.advance(6)
    await layer.new_channel()  # sweeps; the release is forgotten after one expiry
    await layer.send(channel, {"type": "late"})
    await settle()
    assert channel in layer._mailboxes
    layer_kit.clock.advance(6)
    await layer.new_channel()  # any operation sweeps (at most once per expiry)
    assert channel not in layer._mailboxes
    assert held(layer)["mailboxes"] == 0


async def test_in_memory_channels_view_empties_on_expiry() -> None:
    """Upstream's ``InMemoryChannelLayer.channels``: channel -> queue; expiry empties it, and
    a channel that lost a message to expiry leaves its groups."""
    clock = FakeClock()
    layer = InMemoryChannelLayer(expiry=5, clock=clock)
    await layer.group_add("watchers", "nobody.reads.this")
    await layer.group_add("watchers", "reader")
    await layer.group_send("watchers", {"type": "one"})
    await layer.send("nobody.reads.this", {"type": "two"})
    assert set(layer.channels) == {"nobody.reads.this", "reader"}
    assert layer.channels["nobody.reads.this"].qsize() == 2
    assert not layer.channels["reader"].empty()
    assert await layer.receive("reader") == {"type": "one"}
    assert "reader" not in layer.channels  # an empty queue goes once it is received from
    clock.advance(6)
    await layer.group_send("watchers", {"type": "three"})  # any operation sweeps
    assert "nobody.reads.this" not in layer.channels
    assert {g: set(m) for g, m in layer.groups.items()} == {"watchers": {"reader"}}


class OneShot(AsyncConsumer):
    """A worker application instance: one job, then it waits (on its worker inbox and its
    own layer channel) for ``job.stop`` and ends."""

    channel_layer_alias = ALIAS

    async def job_run(self, message: dict[str, Any]) -> None:
        await self.channel_layer.send(message["reply_to"], {"type": "job.done", "n": message["n"]})

    async def job_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer


@pytest.fixture
async def worker(installed: Any) -> AsyncIterator[Worker]:
    app = ChannelNameRouter({"jobs": OneShot.as_asgi()})
    running = Worker(app, ["jobs"], installed)
    task = asyncio.ensure_future(running.arun())
    try:
        yield running
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_worker_instances_leave_nothing_behind(
    installed: Any, layer_kit: LayerKit, worker: Worker
) -> None:
    """Every job starts an application instance (with its own layer channel) that ends after
    one message: neither the worker nor the layer keeps anything per finished instance."""
    if layer_kit.layer == "pubsub":
        pytest.skip("pub/sub keeps no message for a named channel before its worker subscribes")
    layer = installed
    reply_to = await layer.new_channel()

    async def jobs(first: int, count: int) -> None:
        for n in range(first, first + count):
            await layer.send("jobs", {"type": "job.run", "n": n, "reply_to": reply_to})
            assert await layer.receive(reply_to) == {"type": "job.done", "n": n}
            # The instance now waits on its own channel too (its mailbox exists); stop it.
            (instance,) = worker.instances.values()
            await layer.send("jobs", {"type": "job.stop"})
            # The worker's done-callback (registered first) has run when this wait returns.
            await asyncio.wait({instance.task})
            assert worker.instances == {}

    await jobs(0, 10)
    baseline, boxes_before = held(layer), mailbox_count()
    await jobs(10, 100)
    assert worker.instances == {}
    assert held(layer) == baseline
    assert mailbox_count() == boxes_before


async def test_consumer_exit_releases_through_the_default_alias() -> None:
    """The release reaches the layer through the ordinary consumer path (no alias games)."""
    layer = InMemoryChannelLayer()
    old = channel_layers.set(DEFAULT_CHANNEL_LAYER, layer)
    try:

        class Plain(AsyncWebsocketConsumer):
            pass

        comm = WebsocketCommunicator(Plain.as_asgi(), "/")
        assert (await comm.connect())[0]
        assert len(layer.channels) == 1  # armed, waiting for a message
        await comm.disconnect()
        assert layer.channels == {}
    finally:
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
        if old is not None:
            channel_layers.set(DEFAULT_CHANNEL_LAYER, old)


@pytest.mark.redis
async def test_pubsub_channel_nobody_receives_on_is_unsubscribed(
    redis_server: RedisServer,
) -> None:
    """Only pub/sub holds something (a subscription) for a channel before its first message."""
    clock = FakeClock()
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url], expiry=5, clock=clock)
    forgotten = await layer.new_channel()  # its consumer never comes
    listened = await layer.new_channel()
    fut = asyncio.get_running_loop().create_future()
    layer.arm(listened, fut)
    topics = layer._topics[asyncio.get_running_loop()]
    for _ in range(2):  # unread across two sweeps
        clock.advance(6)
        await layer.new_channel()
    await asyncio.gather(*layer._pending)
    assert layer._topic(forgotten) not in topics
    assert layer._topic(listened) in topics  # armed: kept
    # A receiver that turns up after all is subscribed again.
    late = asyncio.ensure_future(layer.receive(forgotten))
    await layer._subscribe_channel(forgotten)  # returns once Redis confirmed it
    await layer.send(forgotten, {"type": "after-all"})
    try:
        assert await late == {"type": "after-all"}
    finally:
        fut.cancel()
        await layer.flush()
        await layer.close()
