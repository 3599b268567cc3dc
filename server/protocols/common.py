"""What the HTTP and WebSocket protocols both do, written once.

* A new connection's ``ConnectionInfo`` (:func:`connection_info`).
* The server's own header lines: ``Server`` (:func:`server_line`) and ``Date``
  (:func:`default_headers`), the same bytes on an HTTP response, a 101 and a WebSocket denial.
* Starting the application task and registering it with the server state (:func:`start_task`).
* The access-log line of one request or handshake (:func:`log_access`).
* The single timer handle of a connection (:class:`ConnectionTimer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from server.access_log import AccessLog
from server.config import Config
from server.datecache import date_line
from server.sansio.scope import ConnectionInfo
from server.state import ServerState
from server.types import HTTPReceiveEvent


def server_line(config: Config) -> bytes:
    """The ``Server`` header line (``b""`` for none: ``--no-server-header`` or an empty name),
    followed by the ``--header`` lines, which go wherever the Server line goes.

    Field values are octets, read as ISO-8859-1 by recipients (RFC 9110 section 5.5), so the
    name is encoded as latin-1 (``Config`` only accepts printable latin-1 names).  A name that
    cannot be a field value (CR/LF/NUL would split the response) is left out rather than
    written or allowed to crash every connection.  An app that sets its own Server header
    replaces the ``server`` line only; the ``--header`` lines are always written.
    """
    extra = config.header_lines
    if not config.server_header or not config.server_name:
        return extra
    value = config.server_name.encode("latin-1", "replace")
    if 13 in value or 10 in value or 0 in value:
        return extra
    return b"server: " + value + b"\r\n" + extra


def connection_info(transport: asyncio.BaseTransport, config: Config) -> ConnectionInfo:
    """What every scope of a new connection shares: its addresses, TLS or not, and whether
    its peer is a proxy whose forwarded headers count."""
    return ConnectionInfo(
        peername=transport.get_extra_info("peername"),
        sockname=transport.get_extra_info("sockname"),
        secure=transport.get_extra_info("sslcontext") is not None,
        root_path=config.root_path,
        proxy_headers=config.proxy_headers,
        forwarded_allow_ips=config.forwarded_allow_ips,
    )


def default_headers(date: bool, server: bytes) -> bytes:
    """The header lines the server adds to every response it serialises: ``Date`` (RFC 9110
    section 6.6.1, formatted once a second) when enabled, then ``server`` (a
    :func:`server_line`)."""
    if date:
        return date_line() + server
    return server


def start_task(
    loop: asyncio.AbstractEventLoop, state: ServerState, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """Run the application coroutine as a task the server tracks until it finishes (graceful
    shutdown waits for, then cancels, what is left in ``state.tasks``)."""
    task = loop.create_task(coro)
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return task


def log_access(
    access: AccessLog,
    client: tuple[str, int] | None,
    method: bytes,
    target: bytes,
    http_version: bytes,
    status: int,
) -> None:
    """One access-log line and the request metrics (callers test ``access.enabled`` first,
    once per connection).  The parser's bytes are passed as they are: the text is only
    decoded when a line is written, which metrics alone never need."""
    access.log(client, method, target, http_version, status)


class ConnectionTimer:
    """The one timer handle of a connection, used in turn for every deadline it has.

    Moving the deadline later costs nothing: the handle keeps its time and, when it fires
    early, re-arms itself for the new deadline; only an earlier deadline reschedules it.  That
    keeps activity-driven deadlines (reset on every read) off the loop's timer heap.
    """

    __slots__ = ("_deadline", "_handle", "_loop", "callback")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self.callback: Callable[[], object] | None = None

    def arm(self, timeout: float, callback: Callable[[], object]) -> None:
        """Call ``callback`` in ``timeout`` seconds, replacing whatever was armed before."""
        loop = self._loop
        deadline = loop.time() + timeout
        self._deadline = deadline
        self.callback = callback
        handle = self._handle
        if handle is None or handle.when() > deadline:
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None
        self.callback = None

    @property
    def armed(self) -> bool:
        return self.callback is not None

    def when(self) -> float:
        """The loop time the armed callback is due at."""
        return self._deadline

    def _fire(self) -> None:
        self._handle = None
        callback = self.callback
        if callback is None:
            return
        if self._deadline - self._loop.time() > 0.001:
            self._handle = self._loop.call_at(self._deadline, self._fire)
            return
        self.callback = None
        callback()


class PulledReceive:
    """The ASGI ``receive`` of one HTTP request (HTTP/1.1 exchange or HTTP/2 stream).

    Messages are made on demand by the subclass's ``_take`` (the body buffered so far, the end
    of the body, the disconnect); this part holds the one waiting future and offers the direct
    feed (docs/direct-feed.md): ``__call__``, ``arm`` and ``wake``, called by the protocol after
    it fed new input.  The subclass provides the ``waiter`` slot.
    """

    if not TYPE_CHECKING:
        # Empty at run time so subclasses keep their slot layout; hidden from mypy, which
        # would otherwise refuse the assignments to ``waiter``, a slot the subclasses declare.
        __slots__ = ()

    waiter: asyncio.Future[HTTPReceiveEvent] | None

    def _take(self) -> HTTPReceiveEvent | None:
        raise NotImplementedError

    async def __call__(self) -> HTTPReceiveEvent:
        message = self._take()
        if message is not None:
            return message
        fut: asyncio.Future[HTTPReceiveEvent] = asyncio.get_running_loop().create_future()
        self.waiter = fut
        try:
            return await fut
        finally:
            if self.waiter is fut:
                self.waiter = None

    def arm(self, fut: asyncio.Future[HTTPReceiveEvent]) -> None:
        """Resolve ``fut`` with the next message, now or when it comes."""
        self.waiter = None
        if fut.done():
            return
        message = self._take()
        if message is not None:
            fut.set_result(message)
        else:
            self.waiter = fut

    def wake(self) -> None:
        fut = self.waiter
        if fut is None:
            return
        # Cleared first: _take may re-enter the protocol (resume the body) and feed us again.
        self.waiter = None
        if fut.done():
            return  # cancelled or resolved elsewhere: the message stays pending
        message = self._take()
        if message is None:
            self.waiter = fut
        else:
            fut.set_result(message)
