"""A channel layer living in one process's memory (tests, development, single-process sites).

Design (bounded buffers with statistics, in the spirit of trio's memory channels):

* each channel is a :class:`~channels.layers.mailbox.Mailbox`: a FIFO bounded by the channel's
  capacity plus the futures of receivers waiting on it.  ``send`` hands the message straight to
  the oldest waiting receiver's future when there is one, so a waiting consumer is resumed with
  the very object that was sent: no copy, no queue round trip, no task.
* messages are therefore *not* copied: a sender must not mutate a dict after sending it (the
  same dict reaches every member of a group).
* ``receive`` awaits one future; ``arm(channel, fut)`` is the direct feed: a consumer hands in
  its own future and the next message resolves it.
* memory follows the live channels only (see ``channels.layers.mailbox``): a consumer's mailbox
  goes when it exits (``release_channel``), a ``receive`` leaves no idle mailbox behind, and a
  sweep at most once per ``expiry`` seconds expires old messages and drops idle mailboxes.  As
  upstream, a channel that lost a message to expiry is also removed from every group.
* ``channels`` maps channel names to their mailboxes (``qsize()``/``empty()`` like upstream's
  queues) and ``groups`` maps group names to ``{channel: time added}``, for tests to inspect.
* a full member channel during ``group_send`` is counted (``statistics().group_send_full``)
  and logged once per call at INFO with the counts, as channels_redis does; the other members
  still get theirs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer, CapacityPattern
from channels.layers.mailbox import BUFFERED, FULL, HANDED, Mailbox, Mailboxes, sweep_mailboxes
from channels.utils import ArmableLayer

__all__ = [
    "BUFFERED",
    "FULL",
    "HANDED",
    "ChannelStatistics",
    "InMemoryChannelLayer",
    "LayerStatistics",
    "Mailbox",
    "sweep_mailboxes",
]

logger = logging.getLogger("channels.layers")

Message = dict[str, Any]


@dataclass(frozen=True)
class ChannelStatistics:
    """Like trio's ``MemoryChannelStatistics`` for one channel."""

    current_buffer_used: int
    max_buffer_size: int
    tasks_waiting_receive: int


@dataclass(frozen=True)
class LayerStatistics:
    channels: int
    groups: int
    buffered_messages: int
    waiting_receivers: int
    sent: int  # messages accepted by send/group_send (buffered or handed over)
    received: int  # messages handed to a receiver
    expired: int  # messages dropped because nobody received them within ``expiry``
    channel_full: int  # send() calls refused with ChannelFull
    group_send_full: int  # group_send deliveries dropped because the member channel was full
    group_sent: int = 0  # group_send deliveries accepted (also counted in ``sent``)


class InMemoryChannelLayer(BaseChannelLayer, ArmableLayer):
    """Process-local channel layer; see the module docstring for the design."""

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        if kwargs:
            # Accepted (settings written for another backend keep working in tests) but
            # worth a line in the log: it is usually a typo.
            logger.warning(
                "InMemoryChannelLayer ignores unknown options: %s", ", ".join(sorted(kwargs))
            )
        if group_expiry <= 0:
            raise ValueError(f"group_expiry must be a positive number, not {group_expiry!r}")
        self.group_expiry = group_expiry
        # Injectable so tests can move time forward instead of sleeping.
        self.clock = clock
        self._mailboxes = Mailboxes(self.get_capacity, expiry, clock())
        # The mailboxes' lock also guards the groups (see channels.layers.mailbox).
        self._lock = self._mailboxes.lock
        self._groups: dict[str, dict[str, float]] = {}
        self._joined: dict[str, set[str]] = {}  # channel -> its groups (for release)
        self._sent = 0
        self._channel_full = 0
        self._group_send_full = 0
        self._group_sent = 0

    # ---------------------------------------------------------------- internals
    def _maybe_sweep(self, now: float) -> None:
        """Sweep (lock held) at most once per ``expiry``; channels that lost a message to
        expiry leave every group, as upstream's in-memory layer does."""
        boxes = self._mailboxes
        if not boxes.maybe_sweep(now) or not boxes.expired_channels:
            return
        for channel in boxes.expired_channels:
            self._leave_groups(channel)

    def _leave_groups(self, channel: str) -> None:
        """Remove ``channel`` from every group it is in (lock held)."""
        for group in self._joined.pop(channel, ()):
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]

    @property
    def channels(self) -> dict[str, Mailbox]:
        """``{channel: mailbox}`` for channels with buffered messages or waiting receivers
        (read it, don't change it)."""
        return self._mailboxes.boxes

    @property
    def groups(self) -> dict[str, dict[str, float]]:
        """``{group: {channel: time added}}`` (read it, don't change it)."""
        return self._groups

    # ---------------------------------------------------------------- messaging
    async def send(self, channel: str, message: Message) -> None:
        self.require_valid_message(message)
        self.require_valid_channel_name(channel)
        now = self.clock()
        with self._lock:
            self._maybe_sweep(now)
            status = self._mailboxes.offer(channel, message, now + self.expiry, now)
        if not status:
            self._channel_full += 1
            raise ChannelFull(channel)
        self._sent += 1

    async def receive(self, channel: str) -> Message:
        """Next message on ``channel``: one future awaited, no task created."""
        self.require_valid_channel_name(channel)
        with self._lock:
            self._maybe_sweep(self.clock())
        return await self._mailboxes.receive(channel, self.clock, self.expiry)

    def arm(self, channel: str, fut: asyncio.Future[Message]) -> None:
        """Direct feed: resolve ``fut`` with the next message on ``channel``.

        The message object is handed over as sent (no copy).  If ``fut`` is already done when
        a message arrives, the message stays pending for the next ``arm``/``receive``.
        """
        if channel not in self._mailboxes.boxes:
            self.require_valid_channel_name(channel)
        self._mailboxes.arm(channel, fut, self.clock())

    async def release_channel(self, channel: str) -> None:
        """The consumer owning ``channel`` exited: drop its mailbox (and what it buffered) and
        its group memberships.  A consumer normally leaves its groups itself, but one that
        died on its way out (a send to a client that had just gone raises) never ran its
        disconnect handler; its memberships would otherwise stay for ``group_expiry``."""
        with self._lock:
            if self._mailboxes.release(channel, self.clock()):
                self._leave_groups(channel)

    async def new_channel(self, prefix: str = "specific") -> str:
        name = f"{prefix}.inmemory!{uuid.uuid4().hex}"
        self.require_valid_channel_name(name)  # a bad prefix fails here, not on first send
        with self._lock:
            # Connection churn calls this once per connection: a natural sweep trigger.
            self._maybe_sweep(self.clock())
        return name

    # ---------------------------------------------------------------- groups
    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            self._groups.setdefault(group, {})[channel] = self.clock()
            self._joined.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]
            self._forget_membership(channel, group)

    def _forget_membership(self, channel: str, group: str) -> None:
        groups = self._joined.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._joined[channel]

    async def group_send(self, group: str, message: Message) -> None:
        """Deliver to every member: O(members), one dict for all of them, no task per member."""
        self.require_valid_message(message)
        self.require_valid_group_name(group)
        full = delivered = 0
        with self._lock:
            now = self.clock()
            self._maybe_sweep(now)
            members = self._groups.get(group)
            if not members:
                return
            cutoff = now - self.group_expiry
            deadline = now + self.expiry
            offer = self._mailboxes.offer
            stale: list[str] = []
            for channel, added in members.items():
                if added <= cutoff:
                    stale.append(channel)
                    continue
                if offer(channel, message, deadline, now):
                    delivered += 1
                else:
                    full += 1
            # Counted once per call (a local per member is cheaper than an attribute).
            self._sent += delivered
            self._group_sent += delivered
            for channel in stale:
                del members[channel]
                self._forget_membership(channel, group)
            count = len(members)
            if not members:
                del self._groups[group]
        if full:
            self._group_send_full += full
            # channels_redis's wording and level: one line per call, not one per member.
            logger.info("%s of %s channels over capacity in group %s", full, count, group)

    # ---------------------------------------------------------------- housekeeping
    async def flush(self) -> None:
        """Drop every buffered message and group.  Waiting receivers keep waiting."""
        with self._lock:
            self._mailboxes.clear()
            self._groups = {}
            self._joined = {}

    async def close(self) -> None:
        """Nothing to release: the layer holds no connections."""

    def statistics(self) -> LayerStatistics:
        boxes = self._mailboxes
        with self._lock:
            return LayerStatistics(
                channels=len(boxes),
                groups=len(self._groups),
                buffered_messages=boxes.buffered(),
                waiting_receivers=boxes.waiting(),
                sent=self._sent,
                received=boxes.received,
                expired=boxes.expired,
                channel_full=self._channel_full,
                group_send_full=self._group_send_full,
                group_sent=self._group_sent,
            )

    def channel_statistics(self, channel: str) -> ChannelStatistics:
        box = self._mailboxes.boxes.get(channel)
        if box is None:
            return ChannelStatistics(0, self.get_capacity(channel), 0)
        return ChannelStatistics(len(box.buffer), box.capacity, box.waiting())

    @property
    def group_full_count(self) -> int:
        """How many group_send deliveries were dropped on a full member channel."""
        return self._group_send_full
