"""A channel layer on Redis pub/sub: lowest-latency fan-out, nothing persisted.

* A channel is the pub/sub topic ``{prefix}:{name}``, a group the topic
  ``{prefix}:group:{name}``.  ``send``/``group_send`` are one PUBLISH each, whatever the number
  of receivers: Redis fans the message out to every subscribed process.
* On a Redis Cluster (``redis+cluster://`` hosts) channels are shard channels (``SPUBLISH``/
  ``SSUBSCRIBE``): see :mod:`channels.layers.redis_cluster_pubsub`.
* Each process subscribes (one connection per shard and event loop, one reader task each) to
  the channels it receives on and to the groups its channels joined.  ``new_channel``
  subscribes before returning, and ``subscribe`` waits for Redis's confirmation, so a message
  sent after ``new_channel`` returns is never missed.
* ``new_channel(prefix)`` names are ``<prefix>.<client id>!<random>``.  Consumers are fed
  directly (``arm``), with no task per consumer.
* Messages wait in bounded in-memory mailboxes (``capacity``/``channel_capacity``, ``expiry``)
  until received; a full mailbox drops the message, counts it (``dropped``) and logs a warning.
* State follows the live channels: when a consumer exits (``release_channel``) its mailbox, its
  subscription and its local group memberships go (a group nobody here belongs to any more is
  unsubscribed too); idle mailboxes are swept at most once per ``expiry``, and a channel
  nobody received on across two sweeps is unsubscribed (its next receive subscribes again;
  what was published in between is lost, as anything published to no subscriber is).
* Payloads are ``serialize(message)`` (msgpack, or JSON with ``serializer_format="json"``,
  optionally encrypted); override ``serialize``/``deserialize`` to change the wire format.
  A publisher cannot know about a remote receiver's mailbox, so ``send`` never raises
  ``ChannelFull``.
* Nothing is stored in Redis: a message sent while nobody subscribes to its channel is gone,
  and ``group_add`` only routes group messages to channels of the process that called it.
* After a Redis restart redis-py reconnects and re-subscribes; messages published meanwhile are
  lost (that is pub/sub).  ``on_disconnect`` / ``on_reconnect`` (message type strings, as in
  channels_redis) are sent as ``{"type": ...}`` to every channel this process receives on when
  a connection to Redis is lost / re-established, so consumers can re-sync their state.
* ``receive`` keeps retrying (with backoff) while Redis is unreachable, like the list-based
  layer; ``send``, ``group_send`` and ``new_channel`` fail with a clear error instead, within
  ``command_timeout`` seconds even when Redis accepts connections but never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from channels.layers.base import BaseChannelLayer, CapacityPattern
from channels.layers.mailbox import FULL, Mailboxes
from channels.layers.redis_cluster import TopologyLog, cluster_spec
from channels.layers.redis_cluster_pubsub import ShardedSubscriber
from channels.layers.redis_common import (
    COMMAND_TIMEOUT,
    DEADLINE_DIGITS,
    RECONNECT_BACKOFF_MAX,
    RECONNECT_ERRORS,
    Codec,
    HashRing,
    bounded,
    close_client,
    close_pools_with_loop,
    make_client,
    parse_hosts,
)
from channels.utils import ArmableLayer

__all__ = ["RedisPubSubChannelLayer"]

logger = logging.getLogger("channels.layers")

Message = dict[str, Any]
SUBSCRIBE_TIMEOUT = 10.0


class _Shard:
    """One shard's connections on one event loop."""

    def __init__(self, client: Redis, on_reconnect: Callable[[_Shard], None]) -> None:
        self.client = client
        self.pubsub: PubSub = client.pubsub()
        self.reader: asyncio.Task[None] | None = None
        self.confirmations: dict[str, list[asyncio.Future[None]]] = {}
        # redis-py's PubSub opens its connection on the first (un)subscribe: concurrent
        # first calls would each open one and all but the last would be orphaned (their
        # SUBSCRIBEs never confirmed).  One (un)subscribe at a time per shard.
        self.lock = asyncio.Lock()
        self.stopping = False
        self.down = False  # a connection error was seen and consumers were told
        self._on_reconnect = on_reconnect
        self._watched: Any = None

    def watch_connection(self) -> None:
        """Hear about every reconnect of the subscriber connection (redis-py reconnects and
        re-subscribes inside ``get_message`` without telling the caller otherwise)."""
        connection = self.pubsub.connection
        if connection is not None and connection is not self._watched:
            self._watched = connection
            connection.register_connect_callback(self.connected)

    async def connected(self, connection: Any) -> None:
        self._on_reconnect(self)


class RedisPubSubChannelLayer(BaseChannelLayer, ArmableLayer):
    command_timeout: float = COMMAND_TIMEOUT

    def __init__(
        self,
        hosts: Iterable[Any] | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        on_disconnect: str | None = None,
        on_reconnect: str | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        # group_expiry is accepted for settings compatibility; pub/sub groups live as long as
        # their local members do.
        kwargs.pop("group_expiry", None)
        serializer_format = kwargs.pop("serializer_format", "msgpack")
        for option, value in (("on_disconnect", on_disconnect), ("on_reconnect", on_reconnect)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{option} must be a message type string, not {value!r}")
        self.on_disconnect = on_disconnect
        self.on_reconnect = on_reconnect
        if kwargs:
            raise TypeError(
                f"unexpected RedisPubSubChannelLayer options: {', '.join(sorted(kwargs))}"
            )
        self.prefix = prefix
        # Redis Cluster (redis+cluster:// hosts): sharded pub/sub, one subscriber connection
        # per primary (channels.layers.redis_cluster_pubsub); no hash ring.
        self.cluster = cluster_spec(hosts)
        self.topology = TopologyLog(f"RedisPubSubChannelLayer {prefix!r}")
        self._sharded: dict[asyncio.AbstractEventLoop, ShardedSubscriber] = {}
        self.hosts = [] if self.cluster else parse_hosts(hosts)
        self.ring = HashRing([h.ident for h in self.hosts] or ["cluster"])
        self.codec = Codec(symmetric_encryption_keys, serializer_format)
        self.clock = clock
        self.client_prefix = uuid.uuid4().hex[:12]
        self._loops: dict[asyncio.AbstractEventLoop, list[_Shard]] = {}
        # Topics subscribed on each loop's connections -> their confirmation.
        self._topics: dict[asyncio.AbstractEventLoop, dict[str, asyncio.Future[None]]] = {}
        self._mailboxes = Mailboxes(self.get_capacity, expiry, clock())
        self._groups: dict[str, set[str]] = {}  # group -> local member channels
        self._memberships: dict[str, set[str]] = {}  # local channel -> its groups
        # Subscribed channels that had no mailbox at the last sweep (see _maybe_sweep).
        self._unread: set[str] = set()
        # Subscribe-then-arm tasks of channels armed before they were subscribed on a loop.
        self._pending: set[asyncio.Task[None]] = set()
        self.dropped = 0

    # ---------------------------------------------------------------- wire format
    def serialize(self, message: Message) -> bytes:
        """The payload published for ``message`` (override to change the wire format)."""
        return self.codec.encode(message)

    def deserialize(self, data: bytes) -> Message:
        """The message a payload made by :meth:`serialize` stands for."""
        return self.codec.decode(data)

    # ---------------------------------------------------------------- connections
    def _shards(self) -> list[_Shard]:
        loop = asyncio.get_running_loop()
        shards = self._loops.get(loop)
        if shards is None:
            for old in [lp for lp in self._loops if lp.is_closed()]:
                del self._loops[old]
            shards = self._loops[loop] = [
                _Shard(make_client(h), self._reconnected) for h in self.hosts
            ]
            self._topics[loop] = {}
            close_pools_with_loop(loop, self._loops, self.close_pools)
        return shards

    async def close_pools(self) -> None:
        loop = asyncio.get_running_loop()
        shards = self._loops.pop(loop, None)
        self._topics.pop(loop, None)
        pending = [t for t in self._pending if t.get_loop() is loop]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        sharded = self._sharded.pop(loop, None)
        if sharded is not None:
            await sharded.close()
        for shard in shards or ():
            shard.stopping = True
            if shard.reader is not None:
                # redis-py can absorb a cancel that races its read timeout; the stopping flag
                # ends the loop at the next 1 s poll in that case.
                shard.reader.cancel()
                await asyncio.wait({shard.reader})
            with contextlib.suppress(*RECONNECT_ERRORS):
                await shard.pubsub.aclose()
            await close_client(shard.client)

    async def close(self) -> None:
        await self.close_pools()

    def _topic(self, channel: str) -> str:
        return f"{self.prefix}:{channel}"

    def _group_topic(self, group: str) -> str:
        return f"{self.prefix}:group:{group}"

    def _shard_for(self, name: str) -> _Shard:
        """The one place a name is mapped to a connection."""
        return self._shards()[self.ring.shard(name)]

    def _cluster_subscriber(self) -> ShardedSubscriber:
        """This loop's sharded subscriptions (cluster mode only)."""
        loop = asyncio.get_running_loop()
        sharded = self._sharded.get(loop)
        if sharded is None:
            assert self.cluster is not None
            self._shards()  # registers the loop, so its closing closes our connections too
            sharded = self._sharded[loop] = ShardedSubscriber(
                self.cluster,
                self._on_shard_message,
                self.topology,
                on_lost=lambda: self._notify(self.on_disconnect),
                on_back=lambda: self._notify(self.on_reconnect),
                timeout=self.command_timeout,
            )
        return sharded

    def _on_shard_message(self, topic: str, data: bytes) -> None:
        group_prefix = self._group_topic("")
        if topic.startswith(group_prefix):
            targets = list(self._groups.get(topic[len(group_prefix) :], ()))
        else:
            targets = [topic[len(self._topic("")) :]]
        self._deliver(targets, data)

    async def _publish(self, name: str, topic: str, payload: bytes, what: str) -> None:
        async with bounded(what, self.command_timeout):
            if self.cluster is not None:
                await self._cluster_subscriber().publish(topic, payload)
            else:
                client = self._shard_for(name).client
                await cast(Awaitable[Any], client.publish(topic, payload))

    async def _subscribe(self, name: str, topic: str) -> None:
        """Subscribe (once per loop) and wait for Redis to confirm, so later publishes
        reach us."""
        if self.cluster is not None:
            sharded = self._cluster_subscriber()
            await sharded.subscribe(topic)
            # Listed like a plain subscription, so on_disconnect/on_reconnect reach it.
            self._topics[asyncio.get_running_loop()][topic] = sharded.confirmed[topic]
            return
        shard = self._shard_for(name)
        loop = asyncio.get_running_loop()
        topics = self._topics[loop]
        fut = topics.get(topic)
        if fut is None:
            fut = topics[topic] = loop.create_future()
            shard.confirmations.setdefault(topic, []).append(fut)
            try:
                async with bounded(f"SUBSCRIBE {topic}", self.command_timeout), shard.lock:
                    await shard.pubsub.subscribe(topic)
            except BaseException:
                del topics[topic]
                raise
            shard.watch_connection()
            if shard.reader is None or shard.reader.done():
                shard.reader = loop.create_task(self._reader(shard))
        if not fut.done():
            try:
                await asyncio.wait_for(asyncio.shield(fut), SUBSCRIBE_TIMEOUT)
            except TimeoutError:
                raise RedisConnectionError(
                    f"Redis did not confirm the subscription to {topic!r} "
                    f"within {SUBSCRIBE_TIMEOUT} s"
                ) from None

    async def _unsubscribe(self, name: str, topic: str) -> None:
        if self.cluster is not None:
            if topic == self._group_topic(name) and name in self._groups:
                return  # a channel here joined the group again meanwhile: keep it
            self._topics[asyncio.get_running_loop()].pop(topic, None)
            with contextlib.suppress(*RECONNECT_ERRORS):
                await self._cluster_subscriber().unsubscribe(topic)
            return
        shard = self._shard_for(name)
        topics = self._topics[asyncio.get_running_loop()]
        with contextlib.suppress(*RECONNECT_ERRORS):
            async with bounded(f"UNSUBSCRIBE {topic}", self.command_timeout), shard.lock:
                if topic == self._group_topic(name) and name in self._groups:
                    return  # a channel here joined the group again meanwhile: keep it
                topics.pop(topic, None)
                await shard.pubsub.unsubscribe(topic)

    async def _reader(self, shard: _Shard) -> None:
        backoff = 0.05
        group_prefix = self._group_topic("")
        channel_prefix = self._topic("")
        me = asyncio.current_task()
        while not shard.stopping:
            if me is not None and me.cancelling():
                raise asyncio.CancelledError  # a cancel swallowed inside redis-py (3.11)
            try:
                item = await shard.pubsub.get_message(timeout=1.0)
            except RECONNECT_ERRORS as exc:
                logger.warning("Redis pub/sub reader failed (%s); retrying", exc)
                if not shard.down:
                    shard.down = True
                    self._notify(self.on_disconnect)
                await asyncio.sleep(backoff)  # reconnect backoff
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)
                continue
            backoff = 0.05
            if item is None:
                continue
            topic = item["channel"]
            topic = topic.decode("ascii") if isinstance(topic, bytes) else str(topic)
            if item["type"] == "subscribe":
                for fut in shard.confirmations.pop(topic, []):
                    if not fut.done():
                        fut.set_result(None)
                continue
            if item["type"] != "message":
                continue
            if topic.startswith(group_prefix):
                targets = list(self._groups.get(topic[len(group_prefix) :], ()))
            else:
                targets = [topic[len(channel_prefix) :]]
            self._deliver(targets, item["data"])

    def _reconnected(self, shard: _Shard) -> None:
        """The subscriber connection of ``shard`` came back (subscriptions are restored)."""
        if shard.stopping:
            return
        if not shard.down:
            # redis-py reconnected by itself: the connection was lost all the same.
            self._notify(self.on_disconnect)
        shard.down = False
        self._notify(self.on_reconnect)

    def _notify(self, message_type: str | None) -> None:
        """Send ``{"type": message_type}`` to every channel this process receives on."""
        if message_type is None:
            return
        channels = set(self._mailboxes.boxes)
        group_prefix = self._group_topic("")
        channel_prefix = self._topic("")
        for topics in self._topics.values():
            channels.update(
                t[len(channel_prefix) :]
                for t in topics
                if t.startswith(channel_prefix) and not t.startswith(group_prefix)
            )
        deadline = self.clock() + self.expiry
        for channel in channels:
            self._offer(channel, {"type": message_type}, deadline)

    def _offer(self, channel: str, message: Message, deadline: float) -> None:
        boxes = self._mailboxes
        with boxes.lock:
            status = boxes.offer(channel, message, deadline, self.clock())
        if status == FULL:
            self.dropped += 1
            logger.warning("channel %r is full; pub/sub message dropped", channel)

    def _maybe_sweep(self, now: float) -> None:
        """At most once per ``expiry``: expire buffered messages, drop idle mailboxes, and
        unsubscribe channels nobody has received on for two sweeps in a row (a channel made
        by ``new_channel`` whose consumer never came, or left without releasing it).  A
        receiver that comes back later is subscribed again by its next receive or arm."""
        with self._mailboxes.lock:
            if not self._mailboxes.maybe_sweep(now):
                return
            boxes = self._mailboxes.boxes
        loop = asyncio.get_running_loop()
        topics = self._topics.get(loop, {})
        group_prefix, channel_prefix = self._group_topic(""), self._topic("")
        unread = {
            topic[len(channel_prefix) :]
            for topic in topics
            if topic.startswith(channel_prefix) and not topic.startswith(group_prefix)
        }
        unread.difference_update(boxes)
        stale, self._unread = unread & self._unread, unread
        if stale:
            task = loop.create_task(self._unsubscribe_channels(stale))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _unsubscribe_channels(self, channels: set[str]) -> None:
        for channel in channels:
            if channel in self._mailboxes.boxes:
                continue  # a receiver came back meanwhile
            with contextlib.suppress(*RECONNECT_ERRORS):
                await self._unsubscribe(channel, self._topic(channel))

    def _deliver(self, targets: list[str], raw: bytes) -> None:
        now = self.clock()
        self._maybe_sweep(now)
        try:
            deadline_ms = int(raw[:DEADLINE_DIGITS])
            if deadline_ms <= now * 1000:
                return
            message = self.deserialize(raw[DEADLINE_DIGITS:])
        except Exception as exc:  # a bad publish must not kill the reader
            logger.error("Dropping unreadable pub/sub message: %s", exc)
            return
        for channel in targets:
            self._offer(channel, message, deadline_ms / 1000)

    def _encode(self, message: Message) -> bytes:
        deadline = int((self.clock() + self.expiry) * 1000)
        return b"%013d" % deadline + self.serialize(message)

    # ---------------------------------------------------------------- API
    async def send(self, channel: str, message: Message) -> None:
        self.require_valid_message(message)
        self.require_valid_channel_name(channel)
        await self._publish(channel, self._topic(channel), self._encode(message), "a send")

    async def receive(self, channel: str) -> Message:
        self.require_valid_channel_name(channel)
        await self._subscribe_channel(channel)
        return await self._mailboxes.receive(channel, self.clock, self.expiry)

    async def _subscribe_channel(self, channel: str) -> None:
        backoff = 0.05
        while True:
            # A consumer outlives Redis outages: keep trying to subscribe (with backoff, so an
            # unreachable server costs a few connection attempts per second, not a busy loop).
            try:
                await self._subscribe(channel, self._topic(channel))
                break
            except RECONNECT_ERRORS as exc:
                logger.warning("Redis pub/sub subscribe to %r failed (%s); retrying", channel, exc)
                await asyncio.sleep(backoff)  # reconnect backoff, not waiting for an event
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)

    def arm(self, channel: str, fut: asyncio.Future[Message]) -> None:
        """Direct feed: resolve ``fut`` with the channel's next message (no task per consumer).

        A channel not yet subscribed on this loop (not made by ``new_channel`` here) is
        subscribed first, in a task, then armed."""
        loop = asyncio.get_running_loop()
        topics = self._topics.get(loop)
        if topics is not None and self._topic(channel) in topics:
            self._mailboxes.arm(channel, fut, self.clock())
            return
        self.require_valid_channel_name(channel)
        task = loop.create_task(self._subscribe_then_arm(channel, fut))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        # Nobody waits any more (another source fired, or the consumer left): stop trying.
        fut.add_done_callback(lambda _: task.cancel())

    async def _subscribe_then_arm(self, channel: str, fut: asyncio.Future[Message]) -> None:
        await self._subscribe_channel(channel)
        if not fut.done():
            self._mailboxes.arm(channel, fut, self.clock())

    async def release_channel(self, channel: str) -> None:
        """The consumer owning ``channel`` exited: drop its mailbox, its local group
        memberships and its subscriptions (a group left without local members too)."""
        if not self._mailboxes.release(channel, self.clock()):
            return  # somebody else still receives on it
        empty: list[str] = []
        for group in self._memberships.pop(channel, ()):
            members = self._groups.get(group)
            if members is not None:
                members.discard(channel)
                if not members:
                    del self._groups[group]
                    empty.append(group)
        loop = asyncio.get_running_loop()
        if loop not in self._loops:
            return
        # Best effort: a consumer exiting while Redis is down must not fail on its way out.
        with contextlib.suppress(*RECONNECT_ERRORS):
            if self._topic(channel) in self._topics.get(loop, {}):
                await self._unsubscribe(channel, self._topic(channel))
            for group in empty:
                await self._unsubscribe(group, self._group_topic(group))

    async def new_channel(self, prefix: str = "specific") -> str:
        channel = f"{prefix}.{self.client_prefix}!{uuid.uuid4().hex}"
        self.require_valid_channel_name(channel)
        self._maybe_sweep(self.clock())  # connection churn: a natural sweep trigger
        await self._subscribe(channel, self._topic(channel))
        return channel

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._groups.setdefault(group, set()).add(channel)
        self._memberships.setdefault(channel, set()).add(group)
        await self._subscribe(group, self._group_topic(group))

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        members = self._groups.get(group)
        if members is None:
            return
        members.discard(channel)
        groups = self._memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._memberships[channel]
        if not members:
            del self._groups[group]
            await self._unsubscribe(group, self._group_topic(group))

    async def group_send(self, group: str, message: Message) -> None:
        self.require_valid_message(message)
        self.require_valid_group_name(group)
        topic = self._group_topic(group)
        await self._publish(group, topic, self._encode(message), "group_send")

    async def flush(self) -> None:
        """Forget every subscription, group and buffered message of this process."""
        loop = asyncio.get_running_loop()
        if loop in self._sharded:
            await self._sharded[loop].reset()
        for shard in self._loops.get(loop, ()):
            with contextlib.suppress(*RECONNECT_ERRORS):
                if shard.pubsub.subscribed:
                    async with bounded("flush", self.command_timeout), shard.lock:
                        await shard.pubsub.unsubscribe()
        if loop in self._topics:
            self._topics[loop] = {}
        self._groups.clear()
        self._memberships.clear()
        self._mailboxes.clear()
