"""Groups of :class:`channels.layers.redis.RedisChannelLayer`: membership and the fan-out.

A group is a Redis **sorted set** ``{prefix}:group:{name}`` of channel names scored by the time
they were added; members older than ``group_expiry`` are removed on ``group_send``.  A
``group_send`` writes one envelope per member channel, but ONE per *process* for process-local
members (the envelope's targets name them), so reaching 1,000 consumers of one process costs
one RPUSH; that process's reader then offers the decoded message to each mailbox
(``RedisChannelLayer._dispatch``).

:class:`RedisGroups` is mixed into the layer class and holds no state of its own: it uses the
layer's connections, key names and clock, all listed in :class:`GroupHost`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from channels.layers.redis_cluster import ClusterSpec
from channels.layers.redis_common import RECONNECT_ERRORS, bounded
from channels.layers.redis_storage import LoopState, envelope_header

logger = logging.getLogger("channels.layers")


class GroupHost(Protocol):
    """What the group methods use of ``RedisChannelLayer`` (``self`` in :class:`RedisGroups`)."""

    cluster: ClusterSpec | None
    prefix: str
    expiry: float
    group_expiry: float
    command_timeout: float
    clock: Callable[[], float]
    local_name: str
    group_send_full: int
    _joined: dict[str, set[str]]

    def require_valid_group_name(self, name: object) -> bool: ...
    def require_valid_channel_name(self, name: object, receive: bool = False) -> bool: ...
    def require_valid_message(self, message: object) -> None: ...
    def get_capacity(self, channel: str) -> int: ...
    def serialize(self, message: dict[str, Any]) -> bytes: ...
    def route(self, channel: str) -> str: ...
    def _state(self) -> LoopState: ...
    def _shard(self, name: str) -> int: ...
    def _key(self, name: str) -> str: ...
    def _group_key(self, group: str) -> str: ...
    async def _push(
        self, shard: int, items: list[tuple[str, int, bytes]], payload: bytes, now: float
    ) -> list[int]: ...
    async def group_channels(self, group: str) -> list[str]: ...


class RedisGroups:
    """``group_add``, ``group_discard``, ``group_channels`` and ``group_send``."""

    def _group_key(self: GroupHost, group: str) -> str:
        if self.cluster is not None:
            return f"{self.prefix}:group:{{{group}}}"
        return f"{self.prefix}:group:{group}"

    async def group_add(self: GroupHost, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        state = self._state()
        shard = self._shard(group)
        key = self._group_key(group)
        async with (
            bounded("group_add", self.command_timeout),
            state.clients[shard].pipeline(transaction=False) as pipe,
        ):
            pipe.zadd(key, {channel: self.clock()})
            pipe.expire(key, int(self.group_expiry) + 1)
            await pipe.execute()
        if "!" in channel and self.route(channel) == self.local_name:
            self._joined.setdefault(channel, set()).add(group)

    async def group_discard(self: GroupHost, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        state = self._state()
        async with bounded("group_discard", self.command_timeout):
            await cast(
                Awaitable[Any],
                state.clients[self._shard(group)].zrem(self._group_key(group), channel),
            )
        groups = self._joined.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._joined[channel]

    async def _leave_groups(self: GroupHost, channel: str) -> None:
        """Remove a released local channel from the groups it joined from here and did not
        leave itself (a consumer that died on its way out never ran its disconnect handler)."""
        groups = self._joined.pop(channel, None)
        if not groups:
            return
        state = self._state()
        try:
            for group in groups:
                async with bounded("group_discard", self.command_timeout):
                    await cast(
                        Awaitable[Any],
                        state.clients[self._shard(group)].zrem(self._group_key(group), channel),
                    )
        except RECONNECT_ERRORS as exc:
            # A consumer leaving while Redis is down must not fail on its way out; the
            # memberships expire with group_expiry.
            logger.warning("could not remove %r from its groups (%s)", channel, exc)

    async def group_channels(self: GroupHost, group: str) -> list[str]:
        """Current (unexpired) members of ``group``."""
        self.require_valid_group_name(group)
        state = self._state()
        key = self._group_key(group)
        shard = self._shard(group)
        async with bounded("group_send", self.command_timeout):
            joined = await state.member_scripts[shard](
                keys=[key],
                args=[repr(self.clock() - self.group_expiry)],
                client=state.clients[shard],
            )
        return joined.decode("ascii").split(",") if joined else []

    async def group_send(self: GroupHost, group: str, message: dict[str, Any]) -> None:
        """One envelope per member channel, or one per *process* for process-local members;
        each shard's share is written by one script call (capacity checked per list)."""
        self.require_valid_message(message)
        channels = await self.group_channels(group)
        if not channels:
            return
        now = self.clock()
        deadline = int((now + self.expiry) * 1000)
        payload = self.serialize(message)
        local: dict[str, list[str]] = {}
        per_shard: dict[int, list[tuple[str, int, bytes]]] = {}
        for channel in channels:
            if "!" in channel:
                local.setdefault(self.route(channel), []).append(channel)
            else:
                header = envelope_header(deadline, "")
                item = (self._key(channel), self.get_capacity(channel), header)
                per_shard.setdefault(self._shard(channel), []).append(item)
        for process_name, members in local.items():
            header = envelope_header(deadline, ",".join(members))
            item = (self._key(process_name), self.get_capacity(process_name), header)
            per_shard.setdefault(self._shard(process_name), []).append(item)
        full = 0
        for shard, items in per_shard.items():
            full += len(await self._push(shard, items, payload, now))
        if full:
            # channels_redis's line and level, once per call; the drops are also counted.
            self.group_send_full += full
            logger.info("%s of %s channels over capacity in group %s", full, len(channels), group)
