"""Running Django ORM code from async consumers.

Long-lived consumers outlive Django's request/response cycle, which is what normally closes
stale or broken database connections; so every synchronous call made through
``database_sync_to_async`` closes old connections before and after it runs, and async
consumers sweep them before each handler (see ``close_old_connections_if_needed``).

Connections inside an atomic block are left alone (Channels 4.2): that is the transaction
Django's ``TestCase`` wraps each test in, and production code never holds one across messages.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, overload

from asgiref.sync import SyncToAsync, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

P = ParamSpec("P")
R = TypeVar("R")


def close_old_connections() -> None:
    """Django's ``close_old_connections`` for this thread, minus connections in a transaction."""
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue
        conn.close_if_unusable_or_obsolete()


def _closing(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def inner(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return inner


class DatabaseSyncToAsync(SyncToAsync[P, R]):
    """``SyncToAsync`` that closes old database connections around the call."""

    def __init__(
        self,
        func: Callable[P, R],
        thread_sensitive: bool = True,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        # Checked here: the closing wrapper would hide a coroutine function from asgiref.
        if iscoroutinefunction(func) or iscoroutinefunction(type(func).__call__):
            raise TypeError("database_sync_to_async can only be applied to sync functions.")
        super().__init__(_closing(func), thread_sensitive=thread_sensitive, executor=executor)


@overload
def database_sync_to_async(
    func: Callable[P, R], *, thread_sensitive: bool = True
) -> Callable[P, Awaitable[R]]: ...


@overload
def database_sync_to_async(
    func: None = None, *, thread_sensitive: bool = True
) -> Callable[[Callable[P, R]], Callable[P, Awaitable[R]]]: ...


def database_sync_to_async(
    func: Callable[P, R] | None = None, *, thread_sensitive: bool = True
) -> Any:
    """Like ``asgiref.sync.sync_to_async`` but closes old DB connections around the call.

    Usable bare (``@database_sync_to_async``), with arguments, or on methods; the result is a
    ``DatabaseSyncToAsync`` (a ``SyncToAsync``), as upstream.
    """

    def decorate(f: Callable[P, R]) -> Callable[P, Awaitable[R]]:
        return DatabaseSyncToAsync(f, thread_sensitive=thread_sensitive)

    if func is None:
        return decorate
    return decorate(func)


async def aclose_old_connections() -> None:
    """Close stale connections in the thread where ``sync_to_async`` code (and the async ORM)
    runs.  Call it in long-lived async consumers before querying after a pause."""
    await sync_to_async(close_old_connections)()


# --- the automatic sweep of async consumers (Channels 4.2) ---------------------------------
#
# Upstream hops to the ORM thread before every handler of an async consumer.  That hop costs
# more than the rest of a small message's handling, and it can only close something when a
# connection exists there.  With CONN_MAX_AGE = 0 (Django's default) every sweep closes every
# connection outside a transaction, so a connection can only be stale if one was opened since
# the last sweep: Django's ``connection_created`` signal tells us.  With persistent connections
# (CONN_MAX_AGE != 0) one may outlive a sweep, so then we hop every time, as upstream does.

_opened_since_sweep = True
# Persistent connections: sweep every time.  Decided on the first sweep (settings needed).
_always_sweep = False
_persistent: bool | None = None


def _note_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    global _opened_since_sweep
    _opened_since_sweep = True


connection_created.connect(
    _note_connection_created, weak=False, dispatch_uid="channels.db.note_connection_created"
)


def _uses_persistent_connections() -> bool:
    global _persistent
    if _persistent is None:
        _persistent = any(db.get("CONN_MAX_AGE", 0) != 0 for db in connections.settings.values())
    return _persistent


async def close_old_connections_if_needed() -> None:
    """What async consumers run before each handler and after disconnecting."""
    global _opened_since_sweep, _always_sweep
    if not (_opened_since_sweep or _always_sweep):
        return
    _opened_since_sweep = False
    if not settings.configured:
        return  # consumers used without Django settings have no database either
    _always_sweep = _uses_persistent_connections()
    await sync_to_async(close_old_connections)()
