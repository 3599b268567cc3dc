"""Background worker: consumes named channels of a channel layer and feeds an ASGI app.

For every channel listed, the worker runs one application instance with the scope
``{"type": "channel", "channel": <name>}`` (what :class:`channels.routing.ChannelNameRouter`
routes on) and hands it every message received on that channel, in order.  An instance that
ends or crashes is logged and replaced when the next message for its channel arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from channels.utils import Armable

logger = logging.getLogger("channels.worker")

__all__ = ["Worker"]

Message = dict[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


class _Inbox(Armable):
    """Messages waiting for one instance, offered as an armable ``receive`` (the direct feed,
    ``channels.utils.Armable``).

    Messages stay here until the application asks for one, so when an instance crashes the
    ones it never took are handed to its replacement instead of being lost.  It holds at most
    one armed future, and none once its instance has ended.
    """

    __slots__ = ("armed", "pending")

    def __init__(self) -> None:
        self.pending: deque[Message] = deque()
        self.armed: asyncio.Future[Message] | None = None

    def put(self, message: Message) -> None:
        fut, self.armed = self.armed, None
        if fut is not None and not fut.done():
            fut.set_result(message)
        else:
            self.pending.append(message)

    def arm(self, fut: asyncio.Future[Any]) -> None:
        if self.pending:
            if not fut.done():
                fut.set_result(self.pending.popleft())
        else:
            self.armed = fut

    async def __call__(self) -> Message:
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.arm(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.pending.appendleft(fut.result())
            raise


class _Instance:
    """One running application instance and its inbox."""

    def __init__(self, app: ASGIApp, channel: str, inbox: _Inbox | None = None) -> None:
        # A replacement instance inherits its crashed predecessor's inbox: nothing is lost.
        self.inbox = inbox if inbox is not None else _Inbox()
        self.channel = channel
        scope = {"type": "channel", "channel": channel}
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._run(app, scope), name=f"worker:{channel}"
        )

    async def _run(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        await app(scope, self.inbox, self._send)

    async def _send(self, message: Message) -> None:
        raise RuntimeError(
            f"application for channel {self.channel!r} called send(); a worker application "
            "has no client to send to (use the channel layer instead)"
        )


class Worker:
    """Runs ``application`` for messages arriving on ``channels`` of ``channel_layer``."""

    def __init__(
        self,
        application: ASGIApp,
        channels: Iterable[str],
        channel_layer: Any,
        max_applications: int = 1000,
    ) -> None:
        if channel_layer is None:
            raise ValueError("Channel layer is not valid (is CHANNEL_LAYERS configured?)")
        self.application = application
        self.channels = list(channels)
        if not self.channels:
            raise ValueError("Worker needs at least one channel name to listen on")
        for channel in self.channels:
            channel_layer.require_valid_channel_name(channel)
            if "!" in channel:
                raise ValueError(f"Worker cannot listen on a process-local channel: {channel!r}")
        self.channel_layer = channel_layer
        self.max_applications = max_applications
        self.instances: dict[str, _Instance] = {}

    def run(self) -> None:
        """Blocking entry point: run until SIGINT/SIGTERM."""
        asyncio.run(self._run_until_signal())

    async def _run_until_signal(self) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, main.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await self.arun()

    async def arun(self) -> None:
        """Listen on every channel until cancelled (or a listener fails)."""
        listeners = [asyncio.ensure_future(self.listener(c)) for c in self.channels]
        try:
            done, _ = await asyncio.wait(listeners, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raise a channel layer failure
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            await self._stop_instances()
            close = getattr(self.channel_layer, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def listener(self, channel: str) -> None:
        logger.info("Worker listening on channel %r", channel)
        while True:
            message = await self.channel_layer.receive(channel)
            if not isinstance(message, dict) or not message.get("type"):
                logger.error("Worker got a message without a 'type' on %r; ignored", channel)
                continue
            self._instance(channel).inbox.put(message)

    def _instance(self, channel: str) -> _Instance:
        instance = self.instances.get(channel)
        if instance is None:
            if len(self.instances) >= self.max_applications:
                raise RuntimeError(f"more than {self.max_applications} application instances")
            instance = self._start(channel, None)
        return instance

    def _start(self, channel: str, inbox: _Inbox | None) -> _Instance:
        instance = self.instances[channel] = _Instance(self.application, channel, inbox)
        instance.task.add_done_callback(lambda _: self._ended(instance))
        return instance

    def _ended(self, instance: _Instance) -> None:
        """An instance returned or crashed: log it; restart at once if messages wait for it."""
        if self.instances.get(instance.channel) is not instance or instance.task.cancelled():
            return
        exc = instance.task.exception()
        if exc is not None:
            logger.error(
                "Application instance for channel %r crashed; starting a new one",
                instance.channel,
                exc_info=exc,
            )
        instance.inbox.armed = None
        if instance.inbox.pending:
            self._start(instance.channel, instance.inbox)
        else:
            del self.instances[instance.channel]

    async def _stop_instances(self) -> None:
        for instance in self.instances.values():
            instance.task.cancel()
        if self.instances:
            await asyncio.gather(*(i.task for i in self.instances.values()), return_exceptions=True)
        self.instances.clear()
