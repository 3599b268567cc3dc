"""Closing the database connections that other threads open while a test serves requests.

Django keeps one connection per thread, and a live server runs application code in threads of
its own: Django's ASGI handler gives every request a fresh thread, and asgiref's executors run
``sync_to_async``/``database_sync_to_async`` code.  Django closes those connections at the end
of each request, except on SQLite's in-memory test database, whose connections its backend
never closes (closing the last one would drop the database).  They are then garbage-collected
when their thread ends, which Python 3.13+ reports as ``ResourceWarning: unclosed database``.

``ThreadConnections`` remembers every connection opened outside the test's own thread (keeping
it alive, so it is never collected unclosed) and closes them all when the test is over.
"""

from __future__ import annotations

import threading
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created


class ThreadConnections:
    """Track connections opened by threads other than the one that calls ``start()``."""

    def __init__(self) -> None:
        self._owner: int | None = None
        self._opened: list[BaseDatabaseWrapper] = []
        self._uid = f"channels.testing.thread_connections.{id(self)}"

    def start(self) -> None:
        self._owner = threading.get_ident()
        connection_created.connect(self._remember, weak=False, dispatch_uid=self._uid)

    def stop(self) -> None:
        connection_created.disconnect(dispatch_uid=self._uid)
        self.close()

    def _remember(self, sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        if threading.get_ident() != self._owner:
            self._opened.append(connection)  # list.append is atomic: no lock needed

    def close(self) -> None:
        """Close every connection remembered so far.  Call it once the threads are done with
        them (the test's requests are over); a thread that lives on, such as asgiref's shared
        executor thread, simply reconnects on its next query."""
        while self._opened:
            wrapper = self._opened.pop()
            raw = wrapper.connection
            if raw is not None:
                # Not ``wrapper.close()``: it is a no-op for in-memory SQLite and refuses to
                # run outside the owning thread.  Django opens SQLite connections with
                # check_same_thread=False, and other drivers' connections are thread-safe to
                # close once idle.
                wrapper.connection = None
                raw.close()
