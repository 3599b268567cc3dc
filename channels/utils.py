"""Helpers shared by consumers: naming things and waiting on several message sources.

The direct feed (``docs/direct-feed.md`` is its one definition): a source offers ``arm(fut)``
and resolves that one future with its next message, straight from the code that produced the
message, or keeps the message when the future is already done.  A consumer listening to the
server and to a channel layer arms ONE future on both per wait: no task and no queue hop per
message.  Sources that are plain ``async`` callables get one long-lived pump task each (per
connection, not per message) that makes them armable.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol, runtime_checkable

MessageSource = Callable[[], Awaitable[Any]]


def name_that_thing(thing: Any) -> str:
    """A readable dotted name for a function, class, instance or module (used in messages)."""
    if isinstance(thing, types.ModuleType):
        return thing.__name__
    if hasattr(thing, "__self__"):  # bound method
        return f"{name_that_thing(thing.__self__)}.{thing.__name__}"
    if hasattr(thing, "__qualname__") or hasattr(thing, "__name__"):
        name = getattr(thing, "__qualname__", None) or thing.__name__
        module = getattr(thing, "__module__", None)
        return f"{module}.{name}" if module else str(name)
    return name_that_thing(type(thing))


@runtime_checkable
class Armable(Protocol):
    """A message source of the direct feed (``docs/direct-feed.md``): the server's
    ``receive`` callables, the worker inbox and the adapters below."""

    def arm(self, fut: asyncio.Future[Any]) -> None: ...


@runtime_checkable
class ArmableLayer(Protocol):
    """A channel layer of the direct feed: ``arm`` per channel, and ``release_channel`` when
    the consumer owning that channel exits (the layer drops what it held for it)."""

    def arm(self, channel: str, fut: asyncio.Future[Any]) -> None: ...

    async def release_channel(self, channel: str) -> None: ...


class LayerSource(Armable):
    """Adapts ``layer.arm(channel, fut)`` to the one-argument ``arm(fut)`` of a source.

    ``close`` (the consumer is exiting) calls the layer's ``release_channel(channel)`` when it
    has one, so the layer drops what it held for this consumer's channel.
    """

    __slots__ = ("_arm", "_channel", "_release")

    def __init__(
        self,
        layer_arm: Callable[[str, asyncio.Future[Any]], None],
        channel: str,
        release: Callable[[str], Awaitable[None]] | None = None,
    ):
        self._arm = layer_arm
        self._channel = channel
        self._release = release

    def arm(self, fut: asyncio.Future[Any]) -> None:
        self._arm(self._channel, fut)

    async def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            await release(self._channel)


class _Nothing:
    pass


_NOTHING = _Nothing()


class PumpedSource(Armable):
    """Makes a plain ``async`` callable armable with one long-lived task.

    The pump holds at most one message it could not hand over yet and stops reading until that
    message is taken, so the source's own backpressure still applies and nothing is buffered
    without bound.
    """

    __slots__ = ("_held", "_room", "_source", "_task", "_waiter")

    def __init__(self, source: MessageSource) -> None:
        self._source = source
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[Any] | None = None
        # Either a message, a BaseException to re-raise in the consumer, or _NOTHING.
        self._held: Any = _NOTHING
        self._room: asyncio.Future[None] | None = None

    def arm(self, fut: asyncio.Future[Any]) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())
        if fut.done():
            return
        held = self._held
        if held is _NOTHING:
            self._waiter = fut
            return
        self._held = _NOTHING
        self._waiter = None
        if isinstance(held, BaseException):
            fut.set_exception(held)
        else:
            fut.set_result(held)
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            outcome: Any
            try:
                outcome = await self._source()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = exc
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                self._waiter = None
                if isinstance(outcome, BaseException):
                    waiter.set_exception(outcome)
                    return
                waiter.set_result(outcome)
                continue
            # Nobody is waiting (or the waiter was resolved by another source): keep it.
            self._held = outcome
            if isinstance(outcome, BaseException):
                return
            self._room = loop.create_future()
            await self._room
            self._room = None

    async def close(self) -> None:
        task = self._task
        self._task = None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elif task is not None and not task.cancelled():
            task.exception()  # mark retrieved; errors were already delivered to a waiter


def make_source(source: Any, layer_channel: str | None = None) -> SourceLike:
    """Pick the cheapest way to listen to ``source`` (a receive callable or a channel layer)."""
    if layer_channel is not None:
        arm = getattr(source, "arm", None)
        if callable(arm):
            release = getattr(source, "release_channel", None)
            return LayerSource(arm, layer_channel, release if callable(release) else None)
        channel = layer_channel
        layer = source

        async def receive_from_layer() -> Any:
            return await layer.receive(channel)

        return PumpedSource(receive_from_layer)
    arm = getattr(source, "arm", None)
    if callable(arm):
        # The server's receive is already armable; present it with the same interface.
        return _ArmableCallable(source)
    return PumpedSource(source)


class _ArmableCallable(Armable):
    __slots__ = ("_source",)

    def __init__(self, source: Any) -> None:
        self._source = source

    def arm(self, fut: asyncio.Future[Any]) -> None:
        self._source.arm(fut)

    async def close(self) -> None:
        return None


SourceLike = LayerSource | PumpedSource | _ArmableCallable


async def dispatch_from(
    sources: Sequence[SourceLike], dispatch: Callable[[Any], Awaitable[Any]]
) -> None:
    """Wait on every source at once and dispatch their messages one at a time.

    Each source's messages are dispatched in that source's order and none is lost: when two
    sources fire for the same future, the second keeps its message for the next round.
    Which source is armed first alternates, so a busy source cannot starve the other one.
    Runs until ``dispatch`` raises (``StopConsumer`` included) or the caller is cancelled; a
    message already handed over when the caller is cancelled goes down with the caller.
    """
    loop = asyncio.get_running_loop()
    count = len(sources)
    start = 0
    fut: asyncio.Future[Any] | None = None
    try:
        while True:
            fut = loop.create_future()
            for i in range(count):
                sources[(start + i) % count].arm(fut)
                if fut.done():
                    break
            start = (start + 1) % count
            message = await fut
            await dispatch(message)
    finally:
        # A still-pending future tells every source to keep later messages for someone else.
        if fut is not None and not fut.done():
            fut.cancel()
        for source in sources:
            await source.close()


async def await_many_dispatch(
    consumer_callables: Sequence[MessageSource], dispatch: Callable[[Any], Awaitable[Any]]
) -> None:
    """Upstream-compatible helper: dispatch messages from several receive callables."""
    await dispatch_from([make_source(c) for c in consumer_callables], dispatch)


# ASGI 3 shapes used across ``channels``.  Kept loose on purpose: any ASGI server's own
# receive/send types (this project's ``server.types`` included) must be accepted as they are.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]
