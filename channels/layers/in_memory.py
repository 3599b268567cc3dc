"""A channel layer living in one process's memory (tests, development, single-process sites).

Design (bounded buffers with statistics, in the spirit of trio's memory channels):

* each channel is a :class:`Mailbox`: a FIFO bounded by the channel's capacity plus the
  futures of receivers waiting on it.  ``send`` hands the message straight to the oldest
  waiting receiver's future when there is one, so a waiting consumer is resumed with the very
  object that was sent: no copy, no queue round trip, no task.
* messages are therefore *not* copied: a sender must not mutate a dict after sending it (the
  same dict reaches every member of a group).
* ``receive`` awaits one future; ``arm(channel, fut)`` is the direct-feed contract
  (contract 4): a consumer hands in its own future and the next message resolves it.
* expiry is lazy (checked when a full mailbox is offered a message and when a message is
  taken) plus a sweep over every mailbox at most once per ``expiry`` seconds, so idle
  channels do not keep stale messages forever.
* a full member channel during ``group_send`` is counted (``statistics().group_send_full``)
  and logged at WARNING naming the group and channel; the other members still get theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer, CapacityPattern

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


FULL, BUFFERED, HANDED = 0, 1, 2


def sweep_mailboxes(boxes: dict[str, Mailbox], now: float) -> int:
    """Expire old messages everywhere and drop idle mailboxes; returns messages expired."""
    expired = 0
    for channel, box in list(boxes.items()):
        expired += box.expire(now)
        if box.idle():
            del boxes[channel]
    return expired


class Mailbox:
    """One channel: a bounded FIFO of ``(deadline, message)`` and the waiting receivers."""

    __slots__ = ("armed", "buffer", "capacity", "waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.buffer: deque[tuple[float, Message]] = deque()
        self.waiters: deque[asyncio.Future[Message]] = deque()
        self.armed: asyncio.Future[Message] | None = None

    def expire(self, now: float) -> int:
        """Drop messages whose deadline has passed; return how many."""
        buffer = self.buffer
        dropped = 0
        while buffer and buffer[0][0] <= now:
            buffer.popleft()
            dropped += 1
        return dropped

    def offer(self, message: Message, deadline: float, now: float) -> tuple[int, int]:
        """Hand ``message`` to a waiting receiver or buffer it.

        Returns ``(status, expired)``: status is ``HANDED``, ``BUFFERED`` or ``FULL`` (falsy).
        """
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            # A done future was cancelled or resolved elsewhere (contract 4): skip it and
            # keep the message for the next receiver instead of losing it.
            if not fut.done():
                if fut is self.armed:
                    self.armed = None
                loop = fut.get_loop()
                if loop is asyncio._get_running_loop():
                    fut.set_result(message)
                else:
                    # Sent from another thread's loop (async_to_sync without an outer loop):
                    # futures are not thread-safe, so resolve it on its own loop.
                    try:
                        loop.call_soon_threadsafe(self._hand_over_later, fut, message, deadline)
                    except RuntimeError:
                        # That loop was closed with the receive still pending (its thread
                        # is gone): nobody will ever read this future; try the next one.
                        continue
                return HANDED, 0
        expired = 0
        if len(self.buffer) >= self.capacity:
            expired = self.expire(now)
            if len(self.buffer) >= self.capacity:
                return FULL, expired
        self.buffer.append((deadline, message))
        return BUFFERED, expired

    def _hand_over_later(
        self, fut: asyncio.Future[Message], message: Message, deadline: float
    ) -> None:
        if fut.done():
            self.unget(message, deadline)  # cancelled meanwhile: keep the message
        else:
            fut.set_result(message)

    def take(self, now: float) -> tuple[Message | None, int]:
        """Pop the oldest live message (``None`` if none) and the number of expired ones."""
        expired = self.expire(now) if self.buffer else 0
        if self.buffer:
            return self.buffer.popleft()[1], expired
        return None, expired

    def unget(self, message: Message, deadline: float) -> None:
        """Put back a message a cancelled receiver was given but never returned."""
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(message)
                return
        self.buffer.appendleft((deadline, message))

    def arm(self, fut: asyncio.Future[Message], now: float) -> int:
        """Contract 4: resolve ``fut`` now if a message is pending, else remember it."""
        previous = self.armed
        if previous is not None and previous is not fut and not previous.done():
            # Only one armed future at a time; arming again replaces the old one.
            with contextlib.suppress(ValueError):
                self.waiters.remove(previous)
        # A consumer arms one future on several sources; when another source resolved it,
        # it is still queued here.  Drop such futures so a busy WebSocket whose layer channel
        # stays quiet does not grow this deque by one future per message.
        waiters = self.waiters
        while waiters and waiters[-1].done():
            waiters.pop()
        while waiters and waiters[0].done():
            waiters.popleft()
        message, expired = self.take(now)
        if message is not None:
            self.armed = None
            if not fut.done():
                fut.set_result(message)
            else:
                self.buffer.appendleft((now + 1e9, message))  # pragma: no cover - caller bug
            return expired
        self.armed = fut
        self.waiters.append(fut)
        return expired

    def idle(self) -> bool:
        if self.buffer:
            return False
        waiters = self.waiters
        if any(f.done() for f in waiters):
            self.waiters = waiters = deque(f for f in waiters if not f.done())
        return not waiters

    def waiting(self) -> int:
        return sum(1 for f in self.waiters if not f.done())


class InMemoryChannelLayer(BaseChannelLayer):
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
        self._boxes: dict[str, Mailbox] = {}
        self._groups: dict[str, dict[str, float]] = {}
        # Sync code reaches the layer through ``async_to_sync`` from several threads, each on
        # its own loop.  "Find nothing, then wait" (receive) and "find no waiter, then buffer"
        # (send) must each be atomic, or a message can land between the two steps and sit in
        # the buffer while the receiver waits.  Held only in synchronous sections (never
        # across an await); uncontended it costs well under a microsecond per call.
        self._lock = threading.RLock()
        self._last_sweep = clock()
        self._sent = 0
        self._received = 0
        self._expired = 0
        self._channel_full = 0
        self._group_send_full = 0

    # ---------------------------------------------------------------- internals
    def _box(self, channel: str) -> Mailbox:
        box = self._boxes.get(channel)
        if box is None:
            box = self._boxes[channel] = Mailbox(self.get_capacity(channel))
        return box

    def _maybe_sweep(self, now: float) -> None:
        # At most once per ``expiry`` seconds: O(channels) amortised over that interval.  Idle
        # mailboxes are only dropped here, so a busy channel is not re-created per message.
        if now - self._last_sweep < self.expiry:
            return
        self._last_sweep = now
        self._expired += sweep_mailboxes(self._boxes, now)

    # ---------------------------------------------------------------- messaging
    async def send(self, channel: str, message: Message) -> None:
        self.require_valid_message(message)
        self.require_valid_channel_name(channel)
        now = self.clock()
        with self._lock:
            self._maybe_sweep(now)
            status, expired = self._box(channel).offer(message, now + self.expiry, now)
        self._expired += expired
        if not status:
            self._channel_full += 1
            raise ChannelFull(channel)
        self._sent += 1
        if status == HANDED:
            self._received += 1

    async def receive(self, channel: str) -> Message:
        """Next message on ``channel``: one future awaited, no task created."""
        self.require_valid_channel_name(channel)
        with self._lock:
            box = self._box(channel)
            message, expired = box.take(self.clock())
            self._expired += expired
            if message is not None:
                self._received += 1
                return message
            fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
            box.waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            with self._lock:
                if fut.done() and not fut.cancelled():
                    # Resolved, then cancelled before resuming: put the message back.
                    self._received -= 1
                    self._box(channel).unget(fut.result(), self.clock() + self.expiry)
                else:
                    with contextlib.suppress(ValueError):
                        box.waiters.remove(fut)
            raise

    def arm(self, channel: str, fut: asyncio.Future[Message]) -> None:
        """Direct-feed contract: resolve ``fut`` with the next message on ``channel``.

        The message object is handed over as sent (no copy).  If ``fut`` is already done when
        a message arrives, the message stays pending for the next ``arm``/``receive``.
        """
        box = self._boxes.get(channel)
        if box is None:
            self.require_valid_channel_name(channel)
        with self._lock:
            box = self._box(channel)
            self._expired += box.arm(fut, self.clock())
        if fut.done():
            self._received += 1

    async def new_channel(self, prefix: str = "specific") -> str:
        name = f"{prefix}.inmemory!{uuid.uuid4().hex}"
        self.require_valid_channel_name(name)  # a bad prefix fails here, not on first send
        return name

    @property
    def groups(self) -> dict[str, dict[str, float]]:
        """``{group: {channel: time added}}`` (read it, don't change it)."""
        return self._groups

    # ---------------------------------------------------------------- groups
    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            self._groups.setdefault(group, {})[channel] = self.clock()

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]

    async def group_send(self, group: str, message: Message) -> None:
        """Deliver to every member: O(members), one dict for all of them, no task per member."""
        self.require_valid_message(message)
        self.require_valid_group_name(group)
        with self._lock:
            members = self._groups.get(group)
            if not members:
                return
            now = self.clock()
            self._maybe_sweep(now)
            cutoff = now - self.group_expiry
            deadline = now + self.expiry
            boxes = self._boxes
            stale: list[str] = []
            for channel, added in members.items():
                if added <= cutoff:
                    stale.append(channel)
                    continue
                box = boxes.get(channel)
                if box is None:
                    box = boxes[channel] = Mailbox(self.get_capacity(channel))
                status, expired = box.offer(message, deadline, now)
                self._expired += expired
                if status:
                    self._sent += 1
                    if status == HANDED:
                        self._received += 1
                else:
                    self._group_send_full += 1
                    logger.warning(
                        "group_send to group %r: channel %r is full (capacity %d); message dropped",
                        group,
                        channel,
                        box.capacity,
                    )
            for channel in stale:
                del members[channel]
            if not members:
                del self._groups[group]

    # ---------------------------------------------------------------- housekeeping
    async def flush(self) -> None:
        """Drop every buffered message and group.  Waiting receivers keep waiting."""
        with self._lock:
            for box in self._boxes.values():
                box.buffer.clear()
            self._boxes = {c: b for c, b in self._boxes.items() if not b.idle()}
            self._groups = {}

    async def close(self) -> None:
        """Nothing to release: the layer holds no connections."""

    def statistics(self) -> LayerStatistics:
        with self._lock:
            return self._statistics()

    def _statistics(self) -> LayerStatistics:
        return LayerStatistics(
            channels=len(self._boxes),
            groups=len(self._groups),
            buffered_messages=sum(len(b.buffer) for b in self._boxes.values()),
            waiting_receivers=sum(b.waiting() for b in self._boxes.values()),
            sent=self._sent,
            received=self._received,
            expired=self._expired,
            channel_full=self._channel_full,
            group_send_full=self._group_send_full,
        )

    def channel_statistics(self, channel: str) -> ChannelStatistics:
        box = self._boxes.get(channel)
        if box is None:
            return ChannelStatistics(0, self.get_capacity(channel), 0)
        return ChannelStatistics(len(box.buffer), box.capacity, box.waiting())

    @property
    def group_full_count(self) -> int:
        """How many group_send deliveries were dropped on a full member channel."""
        return self._group_send_full
