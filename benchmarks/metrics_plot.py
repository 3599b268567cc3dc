"""Draw ``metrics-run.png`` from ``metrics-run.json`` (written by ``benchmarks.metrics_chart``).

A plain script for the peers' interpreter (matplotlib is installed there only), importing
nothing from this repository:

    benchmarks/.venv-peers/bin/python benchmarks/metrics_plot.py metrics-run.json out.png

Rates are computed between consecutive scrapes, as Prometheus' ``rate()`` would; the p99 comes
from the request duration histogram buckets of each interval.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
import sys
from typing import Any

LABEL = re.compile(r'(\w+)="([^"]*)"')


def parse_key(key: str) -> tuple[str, dict[str, str]]:
    name, _, rest = key.partition("{")
    return name, dict(LABEL.findall(rest))


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    out = 0.0
    for key, value in samples.items():
        n, ls = parse_key(key)
        if n == name and all(ls.get(k) == v for k, v in labels.items()):
            out += value
    return out


def quantile(prev: dict[str, float], cur: dict[str, float], q: float) -> float:
    """The q-quantile of the requests finished between two scrapes (upper bucket bound)."""
    name = "channels_server_request_duration_seconds_bucket"
    buckets: list[tuple[float, float]] = []
    for key, value in cur.items():
        n, labels = parse_key(key)
        if n == name:
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets.append((le, value - prev.get(key, 0.0)))
    buckets.sort()
    count = buckets[-1][1] if buckets else 0.0
    if count <= 0:
        return float("nan")
    for le, cumulative in buckets:
        if cumulative >= q * count:
            return le
    return float("nan")


def main(src: str, dst: str) -> None:
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    with open(src) as f:
        series: list[dict[str, Any]] = json.load(f)["series"]
    t: list[float] = []
    rows: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    def per_second(
        a: dict[str, float], b: dict[str, float], dt: float, name: str, **labels: str
    ) -> float:
        return (total(b, name, **labels) - total(a, name, **labels)) / dt

    for prev, cur in itertools.pairwise(series):
        dt = cur["t"] - prev["t"]
        a, b = prev["samples"], cur["samples"]
        t.append(cur["t"])

        def rate(name: str, **labels: str) -> float:
            return per_second(a, b, dt, name, **labels)  # noqa: B023 - used within the iteration

        add("HTTP requests/s", rate("channels_server_requests_total"))
        add("p99 request duration (ms)", 1000 * quantile(a, b, 0.99))
        add("WS messages in/s", rate("channels_server_websocket_messages_total", direction="in"))
        add("WS messages out/s", rate("channels_server_websocket_messages_total", direction="out"))
        add("open HTTP", total(b, "channels_server_connections_open", protocol="http"))
        add("open WebSocket", total(b, "channels_server_connections_open", protocol="websocket"))
        add("event-loop lag (ms)", 1000 * total(b, "channels_server_event_loop_lag_seconds"))
        add("layer sends/s", rate("channels_layer_messages_sent_total"))
        add("layer queue depth", total(b, "channels_layer_queued_messages"))
    panels = [
        ("HTTP requests/s", ["HTTP requests/s"]),
        ("request duration p99 (ms)", ["p99 request duration (ms)"]),
        ("WebSocket messages/s", ["WS messages in/s", "WS messages out/s"]),
        ("open connections", ["open HTTP", "open WebSocket"]),
        ("channel layer", ["layer sends/s", "layer queue depth"]),
        ("event-loop lag, worst of 10 s (ms)", ["event-loop lag (ms)"]),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), sharex=True)
    phases: list[tuple[float, str]] = []
    for point in series:
        if not phases or phases[-1][1] != point["phase"]:
            phases.append((point["t"], point["phase"]))
    for ax, (title, names) in zip(axes, panels, strict=True):
        for name in names:
            ax.plot(t, rows.get(name, []), label=name)
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize=7, loc="upper right")
        for start, _ in phases:
            ax.axvline(start, color="#999999", lw=0.6, ls=":")
    for start, phase in phases:
        if phase != "idle":
            axes[0].annotate(phase, (start, 1.02), xycoords=("data", "axes fraction"), fontsize=7)
    axes[-1].set_xlabel("seconds (scraped every 0.5 s from /metrics during a bounded load run)")
    fig.suptitle("channels-server metrics during a benchmark run", fontsize=11)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
