"""``channels.testing.connections.ThreadConnections``: connections other threads open to the
in-memory test database are closed by the tracker (Django's own ``close()`` leaves them open)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from django.db import connection

from channels.testing.connections import ThreadConnections


def _query_in_a_thread() -> Any:
    """Run a query in a short-lived thread; return the raw connection it opened."""
    opened: list[Any] = []

    def work() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        opened.append(connection.connection)
        connection.close()  # what Django does at the end of a request: a no-op in memory

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    return opened[0]


@pytest.mark.usefixtures("django_test_db")
def test_connections_of_other_threads_are_closed() -> None:
    threads = ThreadConnections()
    threads.start()
    try:
        raw = _query_in_a_thread()
        raw.execute("SELECT 1")  # still open: Django's close() keeps in-memory connections
        # The owner thread's own connection is Django's business, not the tracker's.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        threads.close()
        with pytest.raises(sqlite3.ProgrammingError):
            raw.execute("SELECT 1")
        # The main thread's connection (which keeps the in-memory database alive) is untouched.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        threads.stop()


@pytest.mark.usefixtures("django_test_db")
def test_stopped_tracker_forgets_new_connections() -> None:
    threads = ThreadConnections()
    threads.start()
    threads.stop()
    raw = _query_in_a_thread()
    threads.close()
    raw.execute("SELECT 1")  # not tracked any more: left open
    raw.close()
