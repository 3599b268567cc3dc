"""Process-local mailboxes, shared by every layer, and the rules for when one goes away.

A :class:`Mailbox` is one channel inside this process: a FIFO bounded by the channel's capacity
plus the futures of receivers waiting on it.  ``offer`` hands a message straight to the oldest
waiting receiver's future when there is one (no copy, no task, no queue round trip).

:class:`Mailboxes` holds them by channel name for one layer and owns their lifetime, so that a
process serving connection after connection holds state only for channels someone still uses:

* a mailbox is created by the first send, receive or ``arm`` on its channel;
* ``receive`` drops it on the way out when it is idle (nothing buffered, nobody waiting), as
  upstream Channels does with its queues;
* ``release(channel)`` drops it when its owner is gone: a consumer's channel is released when
  the consumer exits (``channels.utils.LayerSource.close`` calls the layer's
  ``release_channel``), with whatever was still buffered for it.  For one ``expiry`` after
  that, messages still arriving for it (sent before the consumer left) are discarded instead
  of building a new mailbox nobody will read; a receive or arm on it takes it back;
* ``sweep`` (at most once per ``expiry`` seconds, from the layer's operations) expires old
  messages and drops every mailbox left idle, so a channel nobody receives on goes away with
  its last message.

One ``threading.RLock`` guards each registry: sync code reaches a layer through
``async_to_sync`` from several threads, each on its own loop, and "find nothing, then wait"
(receive) and "find no waiter, then buffer" (offer) must each be atomic.  It is held only in
synchronous sections, never across an ``await``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["BUFFERED", "DISCARDED", "FULL", "HANDED", "Mailbox", "Mailboxes", "sweep_mailboxes"]

Message = dict[str, Any]

FULL, BUFFERED, HANDED = 0, 1, 2
DISCARDED = 3  # addressed to a released channel: its receiver is gone


class Mailbox:
    """One channel: a bounded FIFO of ``(deadline, message)`` and the waiting receivers.

    ``qsize()``, ``empty()`` and ``full()`` answer like the ``asyncio.Queue`` upstream's
    in-memory layer keeps per channel, for tests that inspect ``layer.channels``.
    """

    __slots__ = ("armed", "buffer", "capacity", "waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.buffer: deque[tuple[float, Message]] = deque()
        self.waiters: deque[asyncio.Future[Message]] = deque()
        self.armed: asyncio.Future[Message] | None = None

    def qsize(self) -> int:
        return len(self.buffer)

    def empty(self) -> bool:
        return not self.buffer

    def full(self) -> bool:
        return len(self.buffer) >= self.capacity

    def expire(self, now: float) -> int:
        """Drop messages whose deadline has passed; return how many."""
        buffer = self.buffer
        dropped = 0
        while buffer and buffer[0][0] <= now:
            buffer.popleft()
            dropped += 1
        return dropped

    def offer(
        self, message: Message, deadline: float, now: float, displace: bool = False
    ) -> tuple[int, int]:
        """Hand ``message`` to a waiting receiver or buffer it.

        Returns ``(status, expired)``: status is ``HANDED``, ``BUFFERED`` or ``FULL`` (falsy).
        With ``displace`` a full buffer drops its *oldest* message to make room (the message
        is still buffered, but ``FULL`` reports that one was lost).
        """
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            # A done future was cancelled or resolved by another source (direct feed): skip
            # it and keep the message for the next receiver instead of losing it.
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
                if not displace:
                    return FULL, expired
                self.buffer.popleft()
                self.buffer.append((deadline, message))
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
        """Direct feed: resolve ``fut`` now if a message is pending, else remember it.

        Returns the number of messages that expired on the way.
        """
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
        """Nothing buffered and nobody (alive) waiting: the mailbox can go."""
        if self.buffer:
            return False
        waiters = self.waiters
        if waiters:
            # A future of a loop that was closed under it will never be awaited again.
            live = deque(f for f in waiters if not f.done() and not f.get_loop().is_closed())
            if len(live) != len(waiters):
                self.waiters = waiters = live
        if self.armed is not None and self.armed not in waiters:
            self.armed = None  # keep no reference to a finished future
        return not waiters

    def waiting(self) -> int:
        return sum(1 for f in self.waiters if not f.done())


def sweep_mailboxes(boxes: dict[str, Mailbox], now: float) -> int:
    """Expire old messages everywhere and drop idle mailboxes; returns messages expired."""
    expired = 0
    for channel, box in list(boxes.items()):
        expired += box.expire(now)
        if box.idle():
            del boxes[channel]
    return expired


class Mailboxes:
    """The mailboxes of one layer, by channel name; see the module docstring for lifetimes."""

    __slots__ = (
        "boxes",
        "capacity_of",
        "expired",
        "expired_channels",
        "interval",
        "last_sweep",
        "lock",
        "received",
        "released",
    )

    def __init__(self, capacity_of: Callable[[str], int], interval: float, now: float) -> None:
        self.boxes: dict[str, Mailbox] = {}
        self.capacity_of = capacity_of
        self.lock = threading.RLock()
        self.interval = interval  # seconds between sweeps: the layer's expiry
        self.last_sweep = now
        self.received = 0  # messages handed to a receiver
        self.expired = 0  # messages dropped because nobody received them in time
        # Channels that lost a message to expiry in the last sweep (the in-memory layer
        # removes them from its groups, as upstream does).
        self.expired_channels: list[str] = []
        # Released channels -> when (pruned by the sweep after one interval).
        self.released: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.boxes)

    def __contains__(self, channel: object) -> bool:
        return channel in self.boxes

    def get(self, channel: str) -> Mailbox:
        """The channel's mailbox, created when missing (call with the lock held)."""
        box = self.boxes.get(channel)
        if box is None:
            box = self.boxes[channel] = Mailbox(self.capacity_of(channel))
        return box

    def offer(
        self, channel: str, message: Message, deadline: float, now: float, displace: bool = False
    ) -> int:
        """Deliver to ``channel``'s mailbox (lock held by the caller); returns the status."""
        box = self.boxes.get(channel)
        if box is None:
            if self.released and channel in self.released:
                return DISCARDED
            box = self.boxes[channel] = Mailbox(self.capacity_of(channel))
        status, expired = box.offer(message, deadline, now, displace)
        if expired:
            self.expired += expired
        if status == HANDED:
            self.received += 1
        return status

    def maybe_sweep(self, now: float) -> bool:
        """Sweep at most once per ``interval`` (O(mailboxes) amortised over it); call with the
        lock held.  Idle mailboxes of busy channels are not re-created per message this way."""
        if now - self.last_sweep < self.interval:
            return False
        self.last_sweep = now
        touched: list[str] = []
        for channel, box in list(self.boxes.items()):
            dropped = box.expire(now)
            if dropped:
                self.expired += dropped
                touched.append(channel)
            if box.idle():
                del self.boxes[channel]
        self.expired_channels = touched
        if self.released:
            cutoff = now - self.interval
            self.released = {c: t for c, t in self.released.items() if t > cutoff}
        return True

    async def receive(self, channel: str, now: Callable[[], float], expiry: float) -> Message:
        """The next message on ``channel``, cancel-safe: one future awaited, no task.

        A receiver cancelled after its message was handed over puts the message back at the
        head, so nothing is lost.  The mailbox is dropped on the way out when it is idle.
        """
        with self.lock:
            if self.released:
                self.released.pop(channel, None)
            box = self.get(channel)
            message, expired = box.take(now())
            self.expired += expired
            if message is not None:
                self.received += 1
                if box.idle():
                    del self.boxes[channel]
                return message
            fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
            box.waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            with self.lock:
                if fut.done() and not fut.cancelled():
                    # Resolved, then cancelled before resuming: put the message back (in the
                    # channel's current mailbox: this one may have been dropped meanwhile).
                    self.received -= 1
                    self.get(channel).unget(fut.result(), now() + expiry)
                else:
                    with contextlib.suppress(ValueError):
                        box.waiters.remove(fut)
            raise
        finally:
            with self.lock:
                if self.boxes.get(channel) is box and box.idle():
                    del self.boxes[channel]

    def arm(self, channel: str, fut: asyncio.Future[Message], now: float) -> None:
        """Direct feed: resolve ``fut`` with the channel's next message (now or later)."""
        with self.lock:
            box = self.boxes.get(channel)
            if box is None:
                if self.released:
                    self.released.pop(channel, None)
                box = self.boxes[channel] = Mailbox(self.capacity_of(channel))
            expired = box.arm(fut, now)
            if expired:
                self.expired += expired
            if fut.done():
                self.received += 1

    def release(self, channel: str, now: float) -> bool:
        """Forget ``channel`` unless somebody still waits on it; returns whether it went.

        Messages still buffered go with it: the owner that could have read them is gone.
        """
        with self.lock:
            box = self.boxes.get(channel)
            if box is not None:
                box.idle()  # prunes waiters that finished or whose loop closed
                if box.waiting():
                    return False
                del self.boxes[channel]
            self.released[channel] = now
            return True

    def clear(self) -> None:
        """Drop every buffered message and every mailbox nobody waits on (flush)."""
        with self.lock:
            for box in self.boxes.values():
                box.buffer.clear()
            self.boxes = {c: b for c, b in self.boxes.items() if not b.idle()}
            self.released = {}

    def buffered(self) -> int:
        return sum(len(b.buffer) for b in self.boxes.values())

    def waiting(self) -> int:
        return sum(b.waiting() for b in self.boxes.values())
