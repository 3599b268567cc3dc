"""Running Django ORM code from async consumers.

Long-lived consumers outlive Django's request/response cycle, which is what normally closes
stale or broken database connections; so every synchronous call made through
``database_sync_to_async`` closes old connections before and after it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, overload

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def _closing(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def inner(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return inner


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

    Usable bare (``@database_sync_to_async``), with arguments, or on methods.
    """

    def decorate(f: Callable[P, R]) -> Callable[P, Awaitable[R]]:
        return sync_to_async(_closing(f), thread_sensitive=thread_sensitive)

    if func is None:
        return decorate
    return decorate(func)


async def aclose_old_connections() -> None:
    """Close stale connections in the thread where ``sync_to_async`` code runs.

    Consumers do not call this per message (a thread hop each time): synchronous handlers and
    ``database_sync_to_async`` already close old connections around every call.
    """
    await sync_to_async(close_old_connections)()
