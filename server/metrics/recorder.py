"""Process-local counters behind the server metrics: plain integers, no locks, no imports.

The protocols touch these on the hot path (guarded by ``active is not None``, so nothing runs
when metrics are off); :mod:`server.metrics.collector` turns them into Prometheus families
when scraped.  Updating a ``prometheus_client`` metric costs a lock and, in multiprocess mode,
an mmap write per event; adding to an attribute costs a fraction of that, and the totals are
the same.  Every label has a fixed, small set of values.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

# Request methods with their own label value; anything else is "other".
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other")
# Keyed by text (WebSocket handshakes) and by the parser's bytes (HTTP requests).
METHOD_INDEX: Final[dict[str | bytes, int]] = {
    **{name: i for i, name in enumerate(METHODS)},
    **{name.encode(): i for i, name in enumerate(METHODS)},
}
OTHER_METHOD: Final = len(METHODS) - 1
# Status classes are indexed by status // 100 (statuses are 100..999).
STATUS_CLASSES: Final = tuple(f"{i}xx" for i in range(10))

# Request duration buckets, seconds (le).  From a cached hello-world response to a slow page.
DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# Why a request or connection was refused by a configured limit, by response status.
REFUSAL_REASONS: Final = {
    503: "concurrency",  # --limit-concurrency
    413: "request_body",  # --limit-request-body
    414: "request_line",  # --limit-request-line
    431: "request_headers",  # --limit-request-headers / --limit-request-header-size
}


def close_code_label(code: int) -> str:
    """WebSocket close codes as a bounded label: registered codes (RFC 6455 section 7.4.1 and
    the IANA registry, 1000-1015) as themselves, application ranges as ``3xxx`` / ``4xxx``."""
    if 1000 <= code <= 1015:
        return str(code)
    if 3000 <= code <= 3999:
        return "3xxx"
    if 4000 <= code <= 4999:
        return "4xxx"
    return "other"


class ProtocolStats:
    """Connections and bytes of one protocol (``http``, ``websocket``, ...)."""

    __slots__ = ("bytes_in", "bytes_out", "name", "open")

    def __init__(self, name: str) -> None:
        self.name = name
        self.open = 0
        self.bytes_in = 0
        self.bytes_out = 0


class Recorder:
    """Everything the server counts; one per process (``active``)."""

    def __init__(self) -> None:
        # Known up front so that their series exist (at 0) before the first connection.
        self.protocols = {name: ProtocolStats(name) for name in ("http", "websocket")}
        self.requests = [0] * (len(METHODS) * len(STATUS_CLASSES))
        self.duration_counts = [0] * (len(DURATION_BUCKETS) + 1)  # last one: above every bound
        self.duration_sum = 0.0
        self.ws_messages_in = 0
        self.ws_messages_out = 0
        self.ws_closes: dict[str, int] = {}
        self.refused: dict[str, int] = dict.fromkeys(REFUSAL_REASONS.values(), 0)
        self.loop_lag = 0.0

    def protocol(self, name: str) -> ProtocolStats:
        stats = self.protocols.get(name)
        if stats is None:
            stats = self.protocols[name] = ProtocolStats(name)
        return stats

    def request(self, method: str | bytes, status: int, duration: float | None) -> None:
        index = METHOD_INDEX.get(method, OTHER_METHOD) * 10 + status // 100 % 10
        self.requests[index] += 1
        if duration is not None:
            self.duration_counts[bisect_left(DURATION_BUCKETS, duration)] += 1
            self.duration_sum += duration

    def refusal(self, status: int) -> None:
        reason = REFUSAL_REASONS.get(status)
        if reason is not None:
            self.refused[reason] += 1

    def ws_closed(self, code: int) -> None:
        label = close_code_label(code)
        self.ws_closes[label] = self.ws_closes.get(label, 0) + 1


# The recorder of this process while a server with metrics runs, else None.
active: Recorder | None = None
