"""A channel layer on Redis (redis-py's asyncio client), shared by many processes and hosts.

What is stored in Redis and how (envelopes, Lua scripts, the bounded BLPOP, a loop's
connections) is in ``channels.layers.redis_storage``; what the pub/sub layer shares with this
one in ``channels.layers.redis_common``; the process-local mailboxes in
``channels.layers.mailbox``.

Storage design
--------------
* A channel is a Redis **list** ``{prefix}:{name}``: ``send`` appends (RPUSH), ``receive`` pops
  the head (BLPOP), so messages keep their order.  Every entry is an *envelope* (a deadline,
  the targets and the payload: ``channels.layers.redis_storage``).  The payload is
  ``serialize(message)``: msgpack (or JSON with ``serializer_format="json"``), Fernet-encrypted
  when ``symmetric_encryption_keys`` is set; override ``serialize`` / ``deserialize`` in a
  subclass to change it.  ``targets`` is empty for ordinary channels.
* ``new_channel(prefix)`` names are ``<prefix>.<client id>!<random>`` (channels_redis's shape).
  All process-local channels of one layer instance share ONE list, ``specific.<client id>!``,
  whatever their prefix (:meth:`RedisChannelLayer.route` maps a name to it); ``targets`` then
  lists the comma-separated local channels the message is for (commas never appear in names).
  One reader task per event loop BLPOPs that list and dispatches into in-memory mailboxes, so
  a ``group_send`` reaching 1,000 consumers in one process costs one RPUSH, not 1,000.  The
  reader never waits on a consumer: a full mailbox drops its *oldest* message (as
  channels_redis's local buffers do), counted in ``group_send_full``, and the other channels
  are served on.  (As upstream, ``send`` checks the shared list against the channel's own
  capacity; the reader keeps that list near empty, so this only bites when a process stalls.)
* A local mailbox lives while its consumer does (``channels.layers.mailbox``): released when
  the consumer exits, swept at most once per ``expiry`` when nobody received its messages.
* Every write goes through one Lua script (``redis_storage.SEND_SCRIPT``): it drops expired
  envelopes, checks each list against its channel's capacity, appends and refreshes the TTL,
  atomically per shard, and returns the indexes of full lists: ``send`` raises
  :class:`ChannelFull`, ``group_send`` counts and logs.
* A group is a **sorted set** of channel names (``channels.layers.redis_groups``).
* Several hosts are shards chosen by consistent hashing (a hash ring with virtual nodes) of
  the channel's non-local name or the group name.
* On a Redis Cluster (``redis+cluster://`` hosts) keys carry hash tags and the send script
  runs once per slot: see :mod:`channels.layers.redis_cluster`.

Connections: per shard *and per event loop*, one pool for ordinary commands and one for BLPOPs
(no socket timeout there: redis-py would wrap writes in ``asyncio.wait_for``, which on Python
3.11 can swallow a cancellation; reads are bounded client-side instead).  A loop's pools are
closed by ``close_pools()`` or automatically just before that loop closes, so
``async_to_sync`` (a new loop per call) leaks nothing.  Commands are retried with backoff on
connection errors and receive loops keep retrying, so the layer rides out a Redis restart
(with an append-only file, queued messages survive it).  Every other operation is bounded by
``command_timeout`` (10 s): a Redis that is down or stopped answering gives the caller a
``redis.exceptions.ConnectionError``/``TimeoutError`` naming the problem instead of a hang.
A layer object inherited through ``fork()`` (``--workers``) takes a new process-local name in
the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

from redis.asyncio import Redis

from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer, CapacityPattern
from channels.layers.mailbox import FULL, Mailboxes
from channels.layers.redis_cluster import TopologyLog, cluster_spec, push_per_slot
from channels.layers.redis_common import (
    COMMAND_TIMEOUT,
    DEADLINE_DIGITS,
    RECONNECT_BACKOFF_MAX,
    RECONNECT_ERRORS,
    Codec,
    HashRing,
    HostSpec,
    bounded,
    close_client,
    close_pools_with_loop,
    make_client,
    parse_hosts,
)
from channels.layers.redis_groups import RedisGroups
from channels.layers.redis_storage import (
    BLOCK_SECONDS,
    LoopState,
    blpop,
    envelope_header,
    split_envelope,
)
from channels.utils import ArmableLayer

# The shared helpers stay importable from here too (they lived in this module before).
__all__ = ["Codec", "HashRing", "HostSpec", "RedisChannelLayer", "make_client", "parse_hosts"]

logger = logging.getLogger("channels.layers")

Message = dict[str, Any]
CLIENT_ID_LENGTH = 12  # hex digits of a layer instance's process-local id
HEX_DIGITS = frozenset("0123456789abcdef")


class RedisChannelLayer(RedisGroups, BaseChannelLayer, ArmableLayer):
    """Channel layer backed by one or more Redis servers (see the module docstring; the
    group methods are in :class:`channels.layers.redis_groups.RedisGroups`)."""

    command_timeout: float = COMMAND_TIMEOUT

    def __init__(
        self,
        hosts: Iterable[Any] | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        sentinels: list[tuple[str, int]] | None = None,
        services: list[str] | None = None,
        sentinel_kwargs: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        # Options of other Redis layers that need nothing here (lists keep entries distinct
        # without random prefixes); anything else is a typo worth an error.
        kwargs.pop("random_prefix_length", None)
        serializer_format = kwargs.pop("serializer_format", "msgpack")
        if kwargs:
            raise TypeError(f"unexpected RedisChannelLayer options: {', '.join(sorted(kwargs))}")
        if group_expiry <= 0:
            raise ValueError(f"group_expiry must be positive, not {group_expiry!r}")
        self.prefix = prefix
        self.group_expiry = group_expiry
        # Redis Cluster (redis+cluster:// hosts): see channels.layers.redis_cluster.
        self.cluster = cluster_spec(hosts)
        self.topology = TopologyLog(f"RedisChannelLayer {prefix!r}") if self.cluster else None
        if self.cluster is not None and (sentinels or services):
            raise ValueError("a Redis Cluster cannot be combined with Sentinel services")
        self.hosts = (
            [] if self.cluster else parse_hosts(hosts, sentinels, services, sentinel_kwargs)
        )
        idents = [self.cluster.ident] if self.cluster else [h.ident for h in self.hosts]
        self.ring = HashRing(idents)
        self.codec = Codec(symmetric_encryption_keys, serializer_format)
        # Wall clock: deadlines are compared across processes.  Injectable for tests.
        self.clock = clock
        self._new_identity()
        # A layer built before ``--workers`` forks must not give every worker the same
        # process-local list (they would steal each other's messages): re-key in the child.
        this = weakref.ref(self)

        def after_fork_in_child() -> None:
            layer = this()
            if layer is not None:
                layer._new_identity()

        os.register_at_fork(after_in_child=after_fork_in_child)
        self._wake_marker = b"0" * DEADLINE_DIGITS + b"\n"
        self.group_send_full = 0
        self.decode_errors = 0

    def _new_identity(self) -> None:
        """A fresh process-local name; connections and local mailboxes start empty."""
        self.client_prefix = uuid.uuid4().hex[:CLIENT_ID_LENGTH]
        self.local_name = f"specific.{self.client_prefix}!"
        self._loops: dict[asyncio.AbstractEventLoop, LoopState] = {}
        self._mailboxes = Mailboxes(self.get_capacity, self.expiry, self.clock())
        # Groups this process added its own channels to, to leave them on release.
        self._joined: dict[str, set[str]] = {}

    # ---------------------------------------------------------------- wire format
    def serialize(self, message: Message) -> bytes:
        """The payload stored for ``message`` (override to change the wire format)."""
        return self.codec.encode(message)

    def deserialize(self, data: bytes) -> Message:
        """The message a payload made by :meth:`serialize` stands for."""
        return self.codec.decode(data)

    # ---------------------------------------------------------------- connections
    def _state(self) -> LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            # Forget loops that were closed without telling us (their sockets died with them).
            for old in [lp for lp in self._loops if lp.is_closed()]:
                del self._loops[old]
            state = self._loops[loop] = LoopState(self.hosts, self.cluster)
            close_pools_with_loop(loop, self._loops, self.close_pools)
        return state

    async def close_pools(self) -> None:
        """Close the current loop's connections and stop its reader."""
        loop = asyncio.get_running_loop()
        state = self._loops.pop(loop, None)
        if state is None:
            return
        state.stopping = True
        if state.reader is not None and not state.reader.done():
            await self._stop_reader(state)
        # Shielded BLPOPs of cancelled receives end within BLOCK_SECONDS; let them finish so
        # whatever they popped is pushed back instead of lost.
        while state.pending:
            await asyncio.gather(*list(state.pending), return_exceptions=True)
        for client in state.clients + state.blocking_clients:
            await close_client(client)

    async def _stop_reader(self, state: LoopState) -> None:
        """Wake the reader's BLPOP with a marker entry instead of cancelling it: cancelling
        a command mid-reply could lose a message (and redis-py may absorb the cancel)."""
        assert state.reader is not None
        shard = self._shard(self.local_name)
        with contextlib.suppress(*RECONNECT_ERRORS):
            await asyncio.wait_for(
                cast(
                    Awaitable[Any],
                    state.clients[shard].lpush(self._key(self.local_name), self._wake_marker),
                ),
                BLOCK_SECONDS,
            )
        done, _ = await asyncio.wait({state.reader}, timeout=BLOCK_SECONDS + 1)
        if not done:  # Redis unreachable: the reader sits in a backoff sleep
            state.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, *RECONNECT_ERRORS):
                await state.reader

    async def close(self) -> None:
        await self.close_pools()

    def _shard(self, name: str) -> int:
        """The one place a name is mapped to a connection (shard index)."""
        return self.ring.shard(name)

    @staticmethod
    def route(channel: str) -> str:
        """The name of the list ``channel``'s messages travel through.

        An ordinary channel is its own list.  A channel made by :meth:`new_channel`,
        ``<prefix>.<client id>!<random>`` (the client id is 12 hex digits), travels through its
        process's list ``specific.<client id>!`` whatever the prefix; any other process-local
        name (``websocket.send!abc``) through its non-local part, as upstream.
        """
        bang = channel.find("!")
        if bang == -1:
            return channel
        start = bang - CLIENT_ID_LENGTH
        if (
            start > 0
            and channel[start - 1] == "."
            and all(c in HEX_DIGITS for c in channel[start:bang])
        ):
            return "specific." + channel[start : bang + 1]
        return channel[: bang + 1]

    def _key(self, name: str) -> str:
        if self.cluster is not None:  # hash tag: the key's slot is the name's
            return f"{self.prefix}:{{{name}}}"
        return f"{self.prefix}:{name}"

    # ---------------------------------------------------------------- writing
    async def _push(
        self, shard: int, items: list[tuple[str, int, bytes]], payload: bytes, now: float
    ) -> list[int]:
        """Run the send script for ``(key, capacity, header)`` items on one shard; returns
        the (0-based) indexes of full lists."""
        state = self._state()
        args: list[Any] = [payload, int(self.expiry) + 1, int(now * 1000)]
        for _key, capacity, header in items:
            args += [capacity, header]
        if self.cluster is not None:  # one script call per slot, a pipeline per node
            async with bounded("a send", self.command_timeout):
                return await push_per_slot(state.clients[0], state.scripts[0], items, args[:3])
        async with bounded("a send", self.command_timeout):
            full = await state.scripts[shard](
                keys=[i[0] for i in items], args=args, client=state.clients[shard]
            )
        return [int(i) - 1 for i in full]

    async def send(self, channel: str, message: Message) -> None:
        self.require_valid_message(message)
        self.require_valid_channel_name(channel)
        now = self.clock()
        deadline = int((now + self.expiry) * 1000)
        target_key = self.route(channel)
        targets = channel if "!" in channel else ""
        # As channels_redis: the list is checked against the channel's capacity (so
        # ``channel_capacity`` patterns like "websocket.send!*" keep raising ChannelFull).
        item = (
            self._key(target_key),
            self.get_capacity(channel),
            envelope_header(deadline, targets),
        )
        full = await self._push(self._shard(target_key), [item], self.serialize(message), now)
        if full:
            raise ChannelFull(channel)

    # ---------------------------------------------------------------- receiving
    async def receive(self, channel: str) -> Message:
        self.require_valid_channel_name(channel)
        if "!" in channel:
            if channel.endswith("!"):
                raise ValueError(
                    f"receive() needs a full process-local channel name, not {channel!r}"
                )
            return await self._receive_local(channel)
        return await self._receive_shared(channel)

    async def _receive_shared(self, channel: str) -> Message:
        state = self._state()
        shard = self._shard(channel)
        client = state.blocking_clients[shard]
        key = self._key(channel)
        backoff = 0.05
        while True:
            # The BLPOP runs in its own task behind a shield: if our caller is cancelled
            # while Redis already popped an entry, the entry is pushed back, never lost.
            pop = asyncio.ensure_future(blpop(client, key))
            state.pending.add(pop)
            pop.add_done_callback(state.pending.discard)
            try:
                result = await asyncio.shield(pop)
            except asyncio.CancelledError:
                pop.add_done_callback(lambda t: self._push_back(client, key, t))
                raise
            except RECONNECT_ERRORS as exc:
                if self.topology is not None:
                    self.topology.failed(exc)
                else:
                    logger.warning("Redis receive on %r failed (%s); retrying", channel, exc)
                await asyncio.sleep(backoff)  # reconnect backoff, not waiting for an event
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)
                continue
            backoff = 0.05
            if self.topology is not None and self.topology.failing:
                self.topology.recovered()
            if result is None:
                continue
            message = self._open(result[1])
            if message is not None:
                return message

    def _push_back(self, client: Redis, key: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None or task.result() is None:
            return
        raw = task.result()[1]
        with contextlib.suppress(RuntimeError):  # loop already closing: nothing to do
            restore = asyncio.ensure_future(cast(Awaitable[Any], client.lpush(key, raw)))
            state = self._loops.get(asyncio.get_running_loop())
            if state is not None:
                state.pending.add(restore)
                restore.add_done_callback(state.pending.discard)

    def _open(self, raw: bytes) -> Message | None:
        """Decode one envelope; ``None`` when it expired or cannot be read."""
        try:
            deadline, _targets, payload = split_envelope(raw)
            if deadline <= self.clock() * 1000:
                return None
            return self.deserialize(payload)
        except Exception as exc:  # a bad entry must not kill the consumer
            self.decode_errors += 1
            logger.error("Dropping unreadable channel layer message: %s", exc)
            return None

    # Process-local channels ------------------------------------------------------
    def _ensure_reader(self) -> None:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._state()
        reader = state.reader
        if reader is None or reader.done():
            state.reader = loop.create_task(self._reader_loop(state))

    def _require_ours(self, channel: str) -> None:
        if self.route(channel) != self.local_name:
            raise ValueError(
                f"channel {channel!r} belongs to another process; it cannot be received here"
            )

    async def _receive_local(self, channel: str) -> Message:
        self._require_ours(channel)
        self._ensure_reader()
        return await self._mailboxes.receive(channel, self.clock, self.expiry)

    def arm(self, channel: str, fut: asyncio.Future[Message]) -> None:
        """Direct feed for process-local channels: resolve ``fut`` with the
        channel's next message, or keep that message pending if ``fut`` is done by then.

        Without ``arm`` every consumer needed its own pump task calling ``receive`` (a task
        wake-up, a fresh future and a mailbox round trip per delivery; figures in
        benchmarks/micro/RESULTS.md, "Redis layer: arm versus pump tasks").  Messages are
        handed over as decoded (one dict shared by all local members of a group, like the
        in-memory layer).
        """
        if channel not in self._mailboxes.boxes:
            self.require_valid_channel_name(channel)
            if "!" not in channel or channel.endswith("!"):
                self._arm_shared(channel, fut)
                return
            self._require_ours(channel)
        self._ensure_reader()
        self._mailboxes.arm(channel, fut, self.clock())

    async def release_channel(self, channel: str) -> None:
        """The consumer owning ``channel`` exited: drop its local mailbox (and anything it
        buffered) and leave the groups it joined from here and did not leave itself (a
        consumer that died on its way out never ran its disconnect handler).  Messages still
        on their way are dropped by the next sweep."""
        if self._mailboxes.release(channel, self.clock()):
            await self._leave_groups(channel)

    def _arm_shared(self, channel: str, fut: asyncio.Future[Message]) -> None:
        """Channels outside this process's list: one receive task per arm.  If ``fut``
        finishes first (another source fired, or it was cancelled) the receive is cancelled,
        and its shielded BLPOP pushes back whatever it popped, so nothing is lost."""
        if fut.done():
            return
        task = asyncio.ensure_future(self._receive_shared(channel))

        def deliver(done: asyncio.Future[Message]) -> None:
            if done.cancelled():
                return
            exc = done.exception()
            if fut.done():
                if exc is None:
                    # Lost the race with another source: put the message back at the head.
                    with contextlib.suppress(RuntimeError):  # loop closing: nothing to do
                        self._requeue(channel, done.result())
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(done.result())

        def abandon(_: asyncio.Future[Message]) -> None:
            if not task.done():
                task.cancel()

        task.add_done_callback(deliver)
        fut.add_done_callback(abandon)

    def _requeue(self, channel: str, message: Message) -> None:
        state = self._state()
        deadline = int((self.clock() + self.expiry) * 1000)
        raw = envelope_header(deadline, "") + self.serialize(message)
        client = state.clients[self._shard(channel)]
        restore = asyncio.ensure_future(cast(Awaitable[Any], client.lpush(self._key(channel), raw)))
        state.pending.add(restore)
        restore.add_done_callback(state.pending.discard)

    async def _reader_loop(self, state: LoopState) -> None:
        """The one BLPOP loop of this process, feeding the local mailboxes."""
        shard = self._shard(self.local_name)
        client = state.blocking_clients[shard]
        key = self._key(self.local_name)
        me = asyncio.current_task()
        backoff = 0.05
        while not state.stopping:
            try:
                result = await blpop(client, key)
            except RECONNECT_ERRORS as exc:
                if self.topology is not None:
                    self.topology.failed(exc)
                else:
                    logger.warning("Redis reader for %r failed (%s); retrying", key, exc)
                await asyncio.sleep(backoff)  # reconnect backoff
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)
                continue
            backoff = 0.05
            if self.topology is not None and self.topology.failing:
                self.topology.recovered()
            if result is not None:
                self._dispatch(result[1])
                if me is not None and me.cancelling():
                    raise asyncio.CancelledError  # a cancel swallowed underneath

    def _dispatch(self, raw: bytes) -> None:
        now = self.clock()
        try:
            deadline_ms, targets, payload = split_envelope(raw)
            if deadline_ms <= now * 1000 or not targets:
                return
            message = self.deserialize(payload)
        except Exception as exc:  # a bad entry must not kill the reader
            self.decode_errors += 1
            logger.error("Dropping unreadable channel layer message: %s", exc)
            return
        deadline = deadline_ms / 1000
        boxes = self._mailboxes
        full: list[str] = []
        with boxes.lock:
            # Mailboxes of channels nobody receives on any more go away (once per expiry).
            boxes.maybe_sweep(now)
            # Hot loop (once per local member): the decoded message is shared by all members,
            # never copied.  A full mailbox loses its oldest message; the reader moves on.
            offer = boxes.offer
            for channel in targets.split(","):
                if offer(channel, message, deadline, now, True) == FULL:
                    full.append(channel)
        if full:
            self.group_send_full += len(full)
            logger.info(
                "%s of %s channels over capacity in this process; oldest messages dropped",
                len(full),
                targets.count(",") + 1,
            )

    async def new_channel(self, prefix: str = "specific") -> str:
        """``<prefix>.<client id>!<random>``, as channels_redis names them; every prefix of
        this process travels through the same list (see :meth:`route`)."""
        name = f"{prefix}.{self.client_prefix}!{uuid.uuid4().hex}"
        self.require_valid_channel_name(name)  # a bad prefix fails here, not on first send
        boxes = self._mailboxes
        with boxes.lock:
            # Connection churn calls this once per connection: a natural sweep trigger.
            boxes.maybe_sweep(self.clock())
        return name

    # ---------------------------------------------------------------- housekeeping
    async def flush(self) -> None:
        """Delete every key under our prefix on every shard, and local buffers."""
        state = self._state()
        for client in state.clients:
            async with bounded("flush", self.command_timeout):
                keys = [k async for k in client.scan_iter(match=f"{self.prefix}:*", count=1000)]
                for start in range(0, len(keys), 500):
                    await cast(Awaitable[Any], client.unlink(*keys[start : start + 500]))
        self._mailboxes.clear()
        self._joined.clear()


def __getattr__(name: str) -> Any:
    # ``channels.layers.redis.RedisPubSubChannelLayer`` is where some projects import it from;
    # resolved lazily so importing this module does not load the pub/sub one.
    if name == "RedisPubSubChannelLayer":
        from channels.layers.redis_pubsub import RedisPubSubChannelLayer

        return RedisPubSubChannelLayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
