"""Waiting for a server-side state that has no event of its own (bounded polling).

Prefer awaiting an event; use this only where the code under test offers none (a flag on a
protocol object, a task set becoming empty).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_INTERVAL = 0.005


async def eventually(predicate: Callable[[], object], limit: float = 5.0, what: str = "") -> None:
    """Return once ``predicate()`` is true; fail the test after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        assert loop.time() < end, what or "condition not reached in time"
        await asyncio.sleep(POLL_INTERVAL)
