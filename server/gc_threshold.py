"""The cyclic garbage collector's first threshold: CPython 3.13's default on 3.11 and 3.12.

A young-generation collection starts once allocations of container objects outrun their
deallocations by the first threshold.  Under concurrent load the objects of every request in
flight (scope, task, coroutine frames, header list...) are alive at the same moment, so with
64 connections the count swings past 700 on nearly every batch of reads: the collector then
traverses every live young object each time, for nothing (they are freed by reference
counting moments later).  CPython 3.13 raised the default from 700 to 2000; the server applies
that default on older interpreters at start-up.  It changes nothing for an interpreter or an
application that chose its own thresholds (``gc.set_threshold`` before the server starts, in
``asgi.py`` or settings, wins: the app is imported afterwards).

Garbage in reference cycles is still collected, a little later: at most 2000 allocations more.
The measured effect is in benchmarks/micro/RESULTS.md ("Garbage collector threshold").
"""

from __future__ import annotations

import gc
from typing import Final

# The thresholds CPython 3.11 and 3.12 start with (gc.get_threshold()).
OLD_DEFAULT: Final = (700, 10, 10)
# CPython 3.13's first threshold (the other two are unchanged there).
FIRST_THRESHOLD: Final = 2000


def adopt_313_threshold() -> bool:
    """Raise the first threshold to ``FIRST_THRESHOLD`` if the thresholds are still the old
    interpreter default; True when they were changed."""
    if gc.get_threshold() != OLD_DEFAULT:
        return False
    gc.set_threshold(FIRST_THRESHOLD, OLD_DEFAULT[1], OLD_DEFAULT[2])
    return True
