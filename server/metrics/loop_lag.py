"""Event-loop lag: how late a callback scheduled every :data:`INTERVAL` seconds runs.

A loop busy with CPU work (or blocked by a synchronous call in an app) runs timers late; the
lateness is what every request waiting on that loop also suffers.  The gauge shows the worst
lateness of the last :data:`WINDOW` ticks, so a stall is still visible to a scraper that comes
by every few seconds.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Final

from server.metrics.recorder import Recorder

INTERVAL: Final = 0.5
WINDOW: Final = 20  # ticks: 10 s


class LoopLagMonitor:
    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: Recorder) -> None:
        self._loop = loop
        self._recorder = recorder
        self._recent: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self._due = loop.time() + INTERVAL
        self._handle: asyncio.TimerHandle | None = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        self._recent.append(max(0.0, now - self._due))
        self._recorder.loop_lag = max(self._recent)
        self._due = now + INTERVAL
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
