"""Sharded pub/sub (Redis 7+ ``SPUBLISH``/``SSUBSCRIBE``) on a Redis Cluster, per event loop.

Plain ``PUBLISH`` on a cluster is broadcast to every node over the cluster bus, so its cost
grows with the cluster.  A *shard channel* lives in the slot of its name like a key: ``SPUBLISH``
goes to the primary owning that slot, which delivers it to that shard's subscribers only.

How subscriptions are held
--------------------------
* ``SSUBSCRIBE`` must go to the node owning the channel's slot, so this module keeps **one
  subscriber connection per primary** that owns at least one of our shard channels, each with
  its own reader task blocking on its socket.  (redis-py's asyncio ``ClusterPubSub`` reads
  all nodes from one task, polling them in turn; a reader per node keeps delivery latency
  independent of the number of nodes.)  Routing uses the slot map of a ``RedisCluster``
  client, which also publishes (following ``MOVED`` like any keyed command).
* A link is disposable.  When its connection fails (node killed), when the node answers
  ``MOVED`` (slot migrated) or when the node drops a subscription itself (Redis sends an
  unsolicited ``sunsubscribe`` when a slot leaves it), the link is closed and its channels are
  placed again: refresh the slot map, ``SSUBSCRIBE`` on the current owner, retrying with
  backoff until the cluster has settled (a failover takes the node timeout plus an election).
* Messages published to a shard channel while its subscription is being moved are not
  delivered (pub/sub keeps nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.layers.redis_cluster import ClusterSpec, TopologyLog, slot_of
from channels.layers.redis_common import RECONNECT_BACKOFF_MAX

__all__ = ["ShardedSubscriber"]

# Every Redis error ends a link: a lost connection, MOVED (the slot left the node), or a
# cluster error mid-failover.  Its channels are then placed again from a fresh slot map.
LINK_ERRORS = (RedisError, OSError)
POLL_SECONDS = 1.0  # a reader's wake-up to notice ``stopping`` (redis-py may absorb a cancel)


class _Link:
    """One subscriber connection to one primary, and the shard channels it carries."""

    def __init__(self, name: str, host: str, port: int, spec: ClusterSpec) -> None:
        self.name = name
        options: dict[str, Any] = {
            # Few quick retries: a dead node should hand its channels over fast, and
            # re-placing them (below) retries for as long as the cluster needs.
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            "socket_timeout": None,
            **spec.kwargs,
        }
        self.client = Redis(host=host, port=port, **options)
        self.pubsub: PubSub = self.client.pubsub()
        self.topics: set[str] = set()
        self.reader: asyncio.Task[None] | None = None
        self.dead = False
        # One command at a time: redis-py's PubSub opens its connection on the first command,
        # and two commands racing there would each open one (the first one's confirmation
        # then arrives on a connection nobody reads).
        self.lock = asyncio.Lock()
        # Our own SUNSUBSCRIBEs not yet answered, per topic: their replies are not the node
        # dropping us (a topic unsubscribed and at once subscribed again, as a group whose
        # last member left and a new one joined, must not be taken for a moved slot).
        self.leaving: dict[str, int] = {}

    async def close(self) -> None:
        self.dead = True
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
            await asyncio.wait({self.reader})
        with contextlib.suppress(*LINK_ERRORS):
            await self.pubsub.aclose()
        with contextlib.suppress(*LINK_ERRORS):
            await self.client.aclose()


class ShardedSubscriber:
    """The shard-channel subscriptions of one layer on one event loop."""

    def __init__(
        self,
        spec: ClusterSpec,
        deliver: Callable[[str, bytes], None],
        topology: TopologyLog,
        on_lost: Callable[[], None],
        on_back: Callable[[], None],
        timeout: float,
    ) -> None:
        self.spec = spec
        self.router = spec.client()
        self.deliver = deliver
        self.topology = topology
        self.on_lost = on_lost
        self.on_back = on_back
        self.timeout = timeout
        self.links: dict[str, _Link] = {}
        self.owner: dict[str, _Link] = {}  # topic -> link carrying it
        self.confirmed: dict[str, asyncio.Future[None]] = {}
        self.homeless: set[str] = set()  # topics waiting to be placed again
        # topic -> (node it left, until when a slot map naming that node is taken as stale)
        self.left: dict[str, tuple[str, float]] = {}
        self.mover: asyncio.Task[None] | None = None
        self.closing: set[asyncio.Task[None]] = set()  # links being closed (kept from GC)
        self.stopping = False

    # ---------------------------------------------------------------- publishing
    async def publish(self, topic: str, payload: bytes) -> None:
        await self.router.spublish(topic, payload)

    # ---------------------------------------------------------------- subscribing
    async def subscribe(self, topic: str) -> None:
        """Subscribe once; return when the owning node confirmed (so a later publish is
        heard).  Raises a Redis error when the cluster cannot be reached in time."""
        fut = self.confirmed.get(topic)
        if fut is None:
            fut = self.confirmed[topic] = asyncio.get_running_loop().create_future()
            try:
                await self._place(topic)
            except BaseException:
                self.confirmed.pop(topic, None)
                self._forget(topic)
                raise
        if not fut.done():
            try:
                await asyncio.wait_for(asyncio.shield(fut), self.timeout)
            except TimeoutError:
                raise RedisTimeoutError(
                    f"Redis Cluster did not confirm SSUBSCRIBE {topic} within {self.timeout:g} s"
                ) from None

    async def unsubscribe(self, topic: str) -> None:
        self.confirmed.pop(topic, None)
        self.homeless.discard(topic)
        self.left.pop(topic, None)
        link = self._forget(topic)
        if link is not None and not link.dead:
            link.leaving[topic] = link.leaving.get(topic, 0) + 1
            try:
                async with asyncio.timeout(self.timeout), link.lock:
                    await link.pubsub.sunsubscribe(topic)
            except (*LINK_ERRORS, TimeoutError):
                self._answered(link, topic)  # no reply will come

    @staticmethod
    def _answered(link: _Link, topic: str) -> None:
        left = link.leaving.get(topic, 0) - 1
        if left > 0:
            link.leaving[topic] = left
        else:
            link.leaving.pop(topic, None)

    def _forget(self, topic: str) -> _Link | None:
        link = self.owner.pop(topic, None)
        if link is not None:
            link.topics.discard(topic)
        return link

    async def _place(self, topic: str) -> None:
        """SSUBSCRIBE ``topic`` on the primary that owns its slot (per the slot map)."""
        async with asyncio.timeout(self.timeout):
            if self.router._initialize:
                await self.router.initialize()
            node = self.router.nodes_manager.get_node_from_slot(slot_of(topic))
            left, until = self.left.get(topic, ("", 0.0))
            if node.name == left and time.monotonic() < until:
                # Right after a failover some nodes still name the old primary; a demoted
                # primary even accepts SSUBSCRIBE (as a replica of the new owner).  Wait for
                # the map to catch up rather than subscribe on a replica.
                raise RedisConnectionError(f"slot map still names {left} for {topic}")
            link = self.links.get(node.name)
            if link is None or link.dead:
                link = _Link(node.name, node.host, int(node.port), self.spec)
                self.links[node.name] = link
            link.topics.add(topic)
            self.owner[topic] = link
            async with link.lock:
                await link.pubsub.ssubscribe(topic)
            if link.reader is None:
                link.reader = asyncio.get_running_loop().create_task(self._read(link))

    async def _read(self, link: _Link) -> None:
        me = asyncio.current_task()
        while not (self.stopping or link.dead):
            if me is not None and me.cancelling():
                raise asyncio.CancelledError  # a cancel swallowed inside redis-py (3.11)
            try:
                item = await link.pubsub.get_message(timeout=POLL_SECONDS)
            except LINK_ERRORS as exc:
                self._lost(link, exc)
                return
            if item is None:
                continue
            kind = item["type"]
            topic = item["channel"]
            topic = topic.decode("ascii") if isinstance(topic, bytes) else str(topic)
            if kind == "smessage":
                self.deliver(topic, item["data"])
            elif kind == "ssubscribe":
                fut = self.confirmed.get(topic)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif kind == "sunsubscribe" and link.leaving.get(topic):
                self._answered(link, topic)
            elif kind == "sunsubscribe" and self.owner.get(topic) is link:
                # Not asked for: the node gave the slot away (a coordinated failover demoted
                # it, or the slot was migrated); Redis 7 tells shard subscribers so.
                self._forget(topic)
                if not link.topics:
                    self._drop(link)
                self._rehome({topic}, link)

    def _lost(self, link: _Link, exc: BaseException) -> None:
        """``link`` failed: drop it and place its channels again."""
        if link.dead:
            return
        self.topology.failed(exc)
        topics = set(link.topics)
        for topic in topics:
            if self.owner.get(topic) is link:
                del self.owner[topic]
        link.topics.clear()
        self._drop(link)
        self._rehome(topics, link)

    def _drop(self, link: _Link) -> None:
        """Close ``link`` in the background (it may be the caller's own reader)."""
        link.dead = True
        if self.links.get(link.name) is link:
            del self.links[link.name]
        closing = asyncio.get_running_loop().create_task(link.close())
        self.closing.add(closing)
        closing.add_done_callback(self.closing.discard)

    def _rehome(self, topics: set[str], left: _Link) -> None:
        """Place ``topics`` (which ``left`` carried) again; consumers hear ``on_lost`` once
        when a move starts and ``on_back`` once every channel is subscribed again (messages
        in between are gone)."""
        until = time.monotonic() + self.timeout
        self.left.update((topic, (left.name, until)) for topic in topics)
        self.homeless |= topics
        if self.mover is None or self.mover.done():
            self.on_lost()
            self.mover = asyncio.get_running_loop().create_task(self._move())

    async def _move(self) -> None:
        """Place homeless channels again from a fresh slot map, until all are placed."""
        backoff = 0.05
        while self.homeless and not self.stopping:
            with contextlib.suppress(*LINK_ERRORS, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await self.router.nodes_manager.initialize()
            for topic in sorted(self.homeless):
                if topic not in self.confirmed:  # unsubscribed meanwhile
                    self.homeless.discard(topic)
                    continue
                try:
                    await self._place(topic)
                except (*LINK_ERRORS, TimeoutError) as exc:
                    self._forget(topic)
                    self.topology.failed(exc)
                    break
                self.homeless.discard(topic)
                self.left.pop(topic, None)
            else:
                continue
            await asyncio.sleep(backoff)  # the cluster is still failing over: back off
            backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)
        for link in [x for x in self.links.values() if not x.topics and not x.dead]:
            self._drop(link)  # a connection nothing is subscribed on any more
        if not self.stopping:
            self.topology.recovered()
            self.on_back()

    # ---------------------------------------------------------------- housekeeping
    async def reset(self) -> None:
        """Drop every subscription (``flush``): links are closed, not unsubscribed one by
        one (a multi-channel SUNSUBSCRIBE would span slots)."""
        links = list(self.links.values())
        self.links.clear()
        self.owner.clear()
        self.confirmed.clear()
        self.homeless.clear()
        self.left.clear()
        for link in links:
            await link.close()

    async def close(self) -> None:
        self.stopping = True
        if self.mover is not None and not self.mover.done():
            self.mover.cancel()
            await asyncio.wait({self.mover})
        await self.reset()
        if self.closing:
            await asyncio.wait(set(self.closing))
        with contextlib.suppress(*LINK_ERRORS):
            await self.router.aclose()
