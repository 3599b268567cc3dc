"""The server's Prometheus families, built from :mod:`server.metrics.recorder` when scraped.

Registered once per process in ``prometheus_client.REGISTRY`` (the registry is the contract
with ``channels``, whose layer collector is registered there too).  It reads whichever
recorder is active, so servers started one after another in a process (tests) share it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from server.metrics import recorder as _recorder
from server.metrics.recorder import DURATION_BUCKETS, Recorder

PREFIX = "channels_server_"

# Multiprocess aggregation of each gauge (prometheus_client multiprocess_mode): open
# connections add up over the live workers; the loop lag shown is the worst worker's.
GAUGE_MODES = {
    PREFIX + "connections_open": "livesum",
    PREFIX + "event_loop_lag_seconds": "livemax",
}


class ServerCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        rec = _recorder.active
        if rec is None:
            return
        opened = GaugeMetricFamily(
            PREFIX + "connections_open", "Open client connections.", labels=["protocol"]
        )
        for name, count in sorted(open_connections(rec).items()):
            opened.add_metric([name], count)
        received = CounterMetricFamily(
            PREFIX + "received_bytes", "Bytes read from clients.", labels=["protocol"]
        )
        sent = CounterMetricFamily(
            PREFIX + "sent_bytes", "Bytes written to clients.", labels=["protocol"]
        )
        for stats in sorted(rec.protocols.values(), key=lambda s: s.name):
            received.add_metric([stats.name], stats.bytes_in)
            sent.add_metric([stats.name], stats.bytes_out)
        yield opened
        yield received
        yield sent

        requests = CounterMetricFamily(
            PREFIX + "requests",
            "HTTP requests answered (WebSocket handshakes included), by method and status class.",
            labels=["method", "status"],
        )
        for (method, status), value in rec.requests_by_class().items():
            requests.add_metric([method, status], value)
        yield requests

        cumulative = []
        total = 0
        for bound, count in zip(
            (*DURATION_BUCKETS, float("inf")), rec.duration_counts, strict=True
        ):
            total += count
            cumulative.append((_le(bound), float(total)))
        yield HistogramMetricFamily(
            PREFIX + "request_duration_seconds",
            "Time from a request head being parsed to its response being complete.",
            buckets=cumulative,
            sum_value=rec.duration_sum,
        )

        messages = CounterMetricFamily(
            PREFIX + "websocket_messages",
            "WebSocket data messages, in (from clients) and out (to clients).",
            labels=["direction"],
        )
        messages.add_metric(["in"], rec.ws_messages_in)
        messages.add_metric(["out"], rec.ws_messages_out)
        yield messages

        closes = CounterMetricFamily(
            PREFIX + "websocket_closes",
            "Accepted WebSocket sessions ended, by close code (3xxx/4xxx: application codes).",
            labels=["code"],
        )
        for code, value in sorted(rec.ws_closes.items()):
            closes.add_metric([code], value)
        yield closes

        refused = CounterMetricFamily(
            PREFIX + "refused",
            "Requests refused by a configured limit, by limit.",
            labels=["limit"],
        )
        for reason, value in sorted(rec.refused.items()):
            refused.add_metric([reason], value)
        yield refused

        yield GaugeMetricFamily(
            PREFIX + "event_loop_lag_seconds",
            "Worst lateness of a periodic event-loop callback over the last 10 s.",
            value=rec.loop_lag,
        )


def protocol_label(protocol: object) -> str:
    """``HttpProtocol`` -> ``http``, ``WebSocketProtocol`` -> ``websocket``, ``H2Protocol`` ->
    ``h2``: bounded by the protocol classes the server has."""
    return type(protocol).__name__.removesuffix("Protocol").lower() or "other"


def open_connections(rec: Recorder) -> dict[str, int]:
    """Open connections by protocol, counted in the server state (every protocol registers
    there from ``connection_made`` to ``connection_lost``, and moves on an upgrade), so the
    connections themselves count nothing.  ``http`` and ``websocket`` are always present."""
    counts = {"http": 0, "websocket": 0}
    if rec.state is not None:
        labels: dict[type, str] = {}
        # A copy in one C call: a scrape from another thread must not see the set change.
        for conn in list(rec.state.connections):
            kind = type(conn)
            label = labels.get(kind)
            if label is None:
                label = labels[kind] = protocol_label(conn)
            counts[label] = counts.get(label, 0) + 1
    return counts


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
