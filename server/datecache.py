"""The ``Date`` response header (RFC 9110 section 6.6.1), formatted at most once per second.

Formatting an IMF-fixdate costs a few microseconds; every response needs one, but it only changes
once a second, so we keep the last line and compare integer seconds (a cheap ``time.time()``).
"""

from __future__ import annotations

import time
from email.utils import formatdate

_cached_second = -1
_cached_line = b""


def date_line(now: float | None = None) -> bytes:
    """``b"date: <IMF-fixdate>\\r\\n"`` for ``now`` (default: the current time)."""
    global _cached_second, _cached_line
    if now is None:
        now = time.time()
    second = int(now)
    if second != _cached_second:
        _cached_line = b"date: " + formatdate(second, usegmt=True).encode("ascii") + b"\r\n"
        _cached_second = second
    return _cached_line
