"""Consumers: one instance per connection, messages dispatched to methods by their ``type``.

A message ``{"type": "chat.message"}`` calls ``chat_message(message)``.  Besides the messages the
server sends, a consumer with a channel layer also gets messages sent to its ``channel_name``
(and its groups); both sources are awaited together without a task or queue per message (see
``channels.utils``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync

from . import DEFAULT_CHANNEL_LAYER
from . import db as _db
from .db import database_sync_to_async
from .exceptions import StopConsumer
from .utils import Receive, Scope, Send, SourceLike, dispatch_from, make_source


def _dropped_after_close(message: dict[str, Any]) -> bool:
    """Whether an ``OSError`` from the server's ``send`` means "this WebSocket is closed".

    ASGI (WebSocket spec 2.4) lets a server raise an ``OSError`` subclass on a send after the
    connection closed; ours does, so do others, while Daphne drops the message.  A consumer
    sending to a client that just left (typically a group message racing the close) must not
    die there: it would never run its ``websocket.disconnect`` handler, so its
    ``group_discard`` and ``disconnect()`` code would be skipped.  The message is dropped,
    as under Daphne, and the disconnect that the server has queued is dispatched next.
    """
    msg_type = message.get("type")
    return isinstance(msg_type, str) and msg_type.startswith("websocket.")


def get_handler_name(message: dict[str, Any]) -> str:
    """``"websocket.receive"`` -> ``"websocket_receive"``; private names are refused."""
    if "type" not in message:
        raise ValueError("Incoming message has no 'type' attribute")
    msg_type = message["type"]
    if not isinstance(msg_type, str):
        raise ValueError(f"Message 'type' must be a string, got {type(msg_type).__name__}")
    handler_name = msg_type.replace(".", "_")
    # A leading underscore would let a remote sender reach private methods.
    if handler_name.startswith("_"):
        raise ValueError(f"Malformed type in message (leading underscore): {msg_type!r}")
    return handler_name


# Modules whose consumer ``__init__`` turns initkwargs into attributes (see ``as_asgi``).
_FRAMEWORK_MODULES = frozenset(
    {"channels.consumer", "channels.generic.websocket", "channels.generic.http"}
)


class AsyncConsumer:
    """Base consumer whose handlers are coroutines run on the event loop."""

    _sync = False
    # None opts out of the channel layer entirely (no channel name, one message source).
    channel_layer_alias: str | None = DEFAULT_CHANNEL_LAYER

    scope: Scope
    channel_layer: Any
    channel_name: str
    channel_receive: Callable[[], Awaitable[dict[str, Any]]]
    base_send: Any

    def __init__(self, **kwargs: Any) -> None:
        # Set by ``as_asgi(**initkwargs)``, which already checked the names.
        for key, value in kwargs.items():
            setattr(self, key, value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        if self.channel_layer_alias is None:
            self.channel_layer = None
        else:
            from channels.layers import get_channel_layer  # lazy: layers are optional

            self.channel_layer = get_channel_layer(self.channel_layer_alias)
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = async_to_sync(send) if self._sync else send
        try:
            if self.channel_layer is None:
                # One source: awaiting the server's receive directly is already the fast path.
                while True:
                    await self.dispatch(await receive())
            else:
                sources: list[SourceLike] = [
                    make_source(receive),
                    make_source(self.channel_layer, self.channel_name),
                ]
                await dispatch_from(sources, self.dispatch)
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        # Channels 4.2: stale DB connections are dropped before each handler runs, as
        # Django does at the start of a request (free unless a connection may be stale).
        # Two flag reads on the hot path; the coroutine only when a sweep is due.
        if _db._opened_since_sweep or _db._always_sweep:
            await _db.close_old_connections_if_needed()
        await handler(message)

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await self.base_send(message)
        except OSError:
            if not _dropped_after_close(message):
                raise

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> Any:
        """An ASGI 3 app creating a fresh consumer per connection (like Django's ``as_view``).

        ``initkwargs`` go to the constructor, as upstream.  With the framework's own
        ``__init__`` they become instance attributes and must name existing class attributes;
        a consumer defining its own ``__init__`` receives them unchecked.
        """
        own_init = getattr(cls.__init__, "__module__", None) not in _FRAMEWORK_MODULES
        for key in () if own_init else initkwargs:
            if key.startswith("_"):
                raise TypeError(f"as_asgi() refuses private keyword {key!r} for {cls.__name__}")
            if not hasattr(cls, key):
                raise TypeError(
                    f"{cls.__name__}() received an invalid keyword {key!r}. as_asgi() only "
                    f"accepts arguments that are already attributes of the class."
                )
            if callable(getattr(cls, key)) and not isinstance(getattr(cls, key), type):
                raise TypeError(
                    f"as_asgi() keyword {key!r} would replace the method "
                    f"{cls.__name__}.{key}; pass data, not handlers"
                )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            consumer = cls(**initkwargs)
            await consumer(scope, receive, send)

        app.consumer_class = cls  # type: ignore[attr-defined]
        app.consumer_initkwargs = initkwargs  # type: ignore[attr-defined]
        functools.update_wrapper(app, cls, updated=())
        return app


class SyncConsumer(AsyncConsumer):
    """Consumer whose handlers are plain functions, run in a worker thread.

    Handlers may use the Django ORM: each dispatch runs through ``database_sync_to_async``,
    closing stale database connections around it.  ``send`` blocks until the message is sent.
    """

    _sync = True

    @database_sync_to_async
    def dispatch(self, message: dict[str, Any]) -> None:  # type: ignore[override]
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        handler(message)

    def send(self, message: dict[str, Any]) -> None:  # type: ignore[override]
        try:
            self.base_send(message)
        except OSError:
            if not _dropped_after_close(message):
                raise
