"""State shared by every connection of one server process.

Protocols register themselves in ``connections`` on ``connection_made`` and leave on
``connection_lost``; the runtime uses it for ``--limit-concurrency`` and graceful shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class Connection(Protocol):
    """What the runtime needs from a live connection (HTTP or WebSocket protocol)."""

    def shutdown(self) -> None:
        """Graceful stop: finish the in-flight response (HTTP) or close with 1001 (WebSocket)."""

    def abort(self) -> None:
        """Hard stop after the grace period: drop the connection without flushing."""


class ServerState:
    __slots__ = (
        "_idle",
        "connections",
        "lifespan_state",
        "shutting_down",
        "tasks",
        "total_requests",
    )

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.total_requests = 0
        # Filled by lifespan startup; each scope gets a shallow copy (ASGI lifespan "state").
        self.lifespan_state: dict[str, Any] = {}
        self.shutting_down = False
        self._idle: asyncio.Event | None = None

    def add_connection(self, conn: Connection) -> None:
        self.connections.add(conn)

    def remove_connection(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if not self.connections and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no connection is left (used by graceful shutdown)."""
        if not self.connections:
            return
        self._idle = asyncio.Event()
        await self._idle.wait()


class RequestLimitState(ServerState):
    """``ServerState`` for ``--limit-max-requests``: calls ``on_limit`` once the count is reached.

    Only servers with the limit set use this class, so the plain attribute increment of
    ``total_requests`` by the HTTP protocol stays free for everyone else; here the increment
    goes through a property and the limit holds exactly, however busy the worker is.
    """

    __slots__ = ("_count", "limit", "on_limit")

    def __init__(self, limit: int, on_limit: Callable[[], None]) -> None:
        self._count = 0
        self.limit = limit
        self.on_limit: Callable[[], None] | None = on_limit
        super().__init__()

    @property
    def total_requests(self) -> int:
        return self._count

    @total_requests.setter
    def total_requests(self, value: int) -> None:
        self._count = value
        if value >= self.limit and self.on_limit is not None:
            callback, self.on_limit = self.on_limit, None
            callback()
