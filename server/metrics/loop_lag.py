"""Event-loop lag: how late a callback scheduled every :data:`INTERVAL` seconds runs.

A loop busy with CPU work (or blocked by a synchronous call in an app) runs timers late; the
lateness is what every request waiting on that loop also suffers.
"""

from __future__ import annotations

import asyncio
from typing import Final

from server.metrics.recorder import Recorder

INTERVAL: Final = 0.5


class LoopLagMonitor:
    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: Recorder) -> None:
        self._loop = loop
        self._recorder = recorder
        self._due = loop.time() + INTERVAL
        self._handle: asyncio.TimerHandle | None = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        self._recorder.loop_lag = max(0.0, now - self._due)
        self._due = now + INTERVAL
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
