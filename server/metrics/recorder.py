"""Process-local counters behind the server metrics: plain integers, no locks, no wrappers.

The protocols record into these themselves, as part of the bookkeeping they do anyway: each
connection reads :data:`active` once (``None`` when metrics are off, or on a listener that is
not metered, such as ``--metrics-port`` itself) and from then on a request, a read, a write or
a WebSocket message adds to an integer behind one ``is not None`` test.  Nothing wraps the
application or the protocol.  :mod:`server.metrics.collector` turns the integers into
Prometheus families when scraped; open connections are not counted at all but read from the
server state then.  Updating a ``prometheus_client`` metric costs a lock and, in
multiprocess mode, an mmap write per event; adding to an attribute costs a fraction of that,
and the totals are the same.  Every label has a fixed, small set of values.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from server.state import ServerState

# Request methods with their own label value; anything else is "other".
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other")
OTHER_METHOD: Final = len(METHODS) - 1
# Status classes are status // 100 (statuses are 100..999).
STATUS_CLASSES: Final = tuple(f"{i}xx" for i in range(10))

# Request duration buckets, seconds (le).  From a cached hello-world response to a slow page.
DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_FIRST_BOUND: Final = DURATION_BUCKETS[0]

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


# The request clock: a request's duration is perf_counter() at its end minus at its start.
clock: Final = perf_counter


class ProtocolStats:
    """Bytes of one protocol (``http``, ``websocket``, ``h2``), added to by its connections."""

    __slots__ = ("bytes_in", "bytes_out", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.bytes_in = 0
        self.bytes_out = 0


def parts_size(parts: Sequence[bytes | bytearray | memoryview]) -> int:
    """Bytes in a list of buffers written with one call (``writelines``, ``write_parts``)."""
    total = 0
    for part in parts:
        total += len(part)
    return total


class Recorder:
    """Everything the server counts; one per process (``active``)."""

    def __init__(self, state: ServerState | None = None) -> None:
        # The server's connections, counted by protocol when scraped (connections_open).
        self.state = state
        # Known up front so that their series exist (at 0) before the first connection.
        self.protocols = {name: ProtocolStats(name) for name in ("http", "websocket")}
        # Responses: per method, a row of counters indexed by the status itself, folded into
        # status classes when scraped (requests_by_class): one dict lookup and one list
        # index per response, no arithmetic.  Keyed by the parser's bytes (HTTP requests)
        # and by text (WebSocket handshakes).
        self.status_rows = [[0] * 1000 for _ in METHODS]
        self._rows: dict[str | bytes, list[int]] = {}
        for name, row in zip(METHODS[:OTHER_METHOD], self.status_rows, strict=False):
            self._rows[name] = self._rows[name.encode()] = row
        self._other = self.status_rows[OTHER_METHOD]
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

    def request(self, method: str | bytes, status: int, duration: float | None = None) -> None:
        """One response (or WebSocket handshake outcome); ``duration`` when it was timed."""
        self._rows.get(method, self._other)[status if 100 <= status <= 999 else 0] += 1
        if duration is not None:
            self.duration_counts[bisect_left(DURATION_BUCKETS, duration)] += 1
            self.duration_sum += duration

    def response(self, method: str | bytes, status: int, started: float) -> None:
        """One HTTP response complete (an app's status, 200..999 as ``ResponseState`` checks,
        or one the server chose), its request started at ``clock()`` = ``started``.

        The per-request path: ``request`` spelled out (one call, not two), and the fastest
        responses (the first bucket) are counted without a bisection."""
        duration = clock() - started
        self._rows.get(method, self._other)[status] += 1
        if duration <= _FIRST_BOUND:
            self.duration_counts[0] += 1
        else:
            self.duration_counts[bisect_left(DURATION_BUCKETS, duration)] += 1
        self.duration_sum += duration

    def requests_by_class(self) -> dict[tuple[str, str], int]:
        """Responses so far by (method label, status class), classes with none left out."""
        counts = {}
        for method, row in zip(METHODS, self.status_rows, strict=True):
            for index, label in enumerate(STATUS_CLASSES):
                value = sum(row[index * 100 : index * 100 + 100])
                if value:
                    counts[method, label] = value
        return counts

    def refusal(self, status: int) -> None:
        reason = REFUSAL_REASONS.get(status)
        if reason is not None:
            self.refused[reason] += 1

    def ws_closed(self, code: int) -> None:
        label = close_code_label(code)
        self.ws_closes[label] = self.ws_closes.get(label, 0) + 1


# The recorder of this process while a server with metrics runs, else None.  A connection
# records into it when its listener's config has metrics on (``Config.metrics_enabled``); the
# ``--metrics-port`` listener's own config has them off, so scrapes are not traffic.
active: Recorder | None = None
