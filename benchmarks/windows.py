"""Which measurement windows count.

On a shared machine another process can take the server's core in the middle of a window; that
window then measures the neighbour, not the server.  A window in which other processes used
more than ``max_contention`` percent of the server's core is discarded and redone, at most
``extra`` times per measurement; discarded windows are still reported (count and values).
"""

from __future__ import annotations

import math


class WindowPlan:
    def __init__(self, repeats: int, extra: int, max_contention: float) -> None:
        self.repeats = repeats
        self.extra_left = extra
        self.max_contention = max_contention
        self.kept = 0
        self.discarded = 0

    def more(self) -> bool:
        return self.kept < self.repeats

    def keep(self, others_on_server_core_pct: float) -> bool:
        """Record one finished window; False means: discard it and measure another."""
        contended = (
            not math.isnan(others_on_server_core_pct)
            and others_on_server_core_pct > self.max_contention
        )
        if contended and self.extra_left > 0:
            self.extra_left -= 1
            self.discarded += 1
            return False
        self.kept += 1
        return True
