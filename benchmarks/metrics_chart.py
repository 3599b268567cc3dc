"""Scrape ``/metrics`` during a real, bounded load run and chart what Prometheus would see.

    .venv/bin/python -m benchmarks.metrics_chart [--seconds 10] [--out DIR] [--png FILE]

Starts our server (one worker, the Django router app of workloads B-D, ``--metrics-port``),
then runs three phases of ``--seconds`` each against 127.0.0.1: HTTP keep-alive with ``wrk``
(workload A/B shape), WebSocket echo with 50 clients (C) and group fan-out with 200 clients
(D, in-memory layer).  A thread scrapes every :data:`SCRAPE_EVERY` seconds and keeps the
families the chart needs.  Writes ``metrics-run.json`` and draws ``metrics-run.png`` with
``benchmarks/metrics_plot.py`` under the peers' interpreter (matplotlib lives there, see
``benchmarks/plot.py``).  Every phase stops by itself; nothing is left running.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import peers, procs, servers
from benchmarks.loadgen import wrk
from benchmarks.workloads import ROUTER_APP

SCRAPE_EVERY = 0.5
KEPT = (
    "channels_server_requests_total",
    "channels_server_request_duration_seconds_bucket",
    "channels_server_connections_open",
    "channels_server_websocket_messages_total",
    "channels_server_sent_bytes_total",
    "channels_server_event_loop_lag_seconds",
    "channels_layer_messages_sent_total",
    "channels_layer_queued_messages",
    "channels_layer_groups",
)


def scrape(url: str) -> dict[str, float]:
    """The kept samples, keyed ``name{label="value",...}``."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in KEPT:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


class Scraper(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.series: list[dict[str, Any]] = []
        self.phase = "idle"
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(SCRAPE_EVERY):
            try:
                samples = scrape(self.url)
            except OSError:
                continue  # a scrape may time out under full load; the next one is the data
            self.series.append(
                {"t": time.monotonic() - self.t0, "phase": self.phase, "samples": samples}
            )


def _loadgen(mode: str, port: int, clients: int, seconds: float, *extra: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen.ws", mode, "--port", str(port),
         "--clients", str(clients), "--duration", str(seconds), "--repeats", "1",
         "--warmup", "0.5", *extra],
        cwd=servers.REPO, capture_output=True, timeout=seconds * 4 + 60, check=False,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.metrics_chart")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    p.add_argument("--out", type=Path, default=servers.BENCH_DIR / "results")
    p.add_argument("--png", type=Path, default=None, help="chart path [OUT/metrics-run.png]")
    args = p.parse_args(argv)
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        print("needs prometheus_client (pip install -e '.[metrics]')", file=sys.stderr)
        return 2
    metrics_port = procs.free_port()

    def argv_for(app: str, port: int) -> list[str]:
        return [*servers._ours(app, port), "--metrics-port", str(metrics_port)]

    spec = servers.ServerSpec("ours-metrics", "channels-server, metrics on", argv_for, ours=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with servers.running(
        spec, ROUTER_APP, core=None, log_dir=args.out / "logs", tag="metrics", django=True
    ) as srv:
        scraper = Scraper(f"http://127.0.0.1:{metrics_port}/metrics")
        scraper.start()
        try:
            time.sleep(2 * SCRAPE_EVERY)  # a baseline before any load
            if wrk.available():
                scraper.phase = "HTTP (wrk, 64 connections)"
                wrk.run(srv.port, "/", seconds=int(args.seconds), connections=64, core=None,
                        server_pid=srv.pid, server_core=None)  # fmt: skip
            scraper.phase = "WebSocket echo (50 clients)"
            _loadgen("echo", srv.port, 50, args.seconds)
            scraper.phase = "group fan-out (200 clients)"
            _loadgen("fanout", srv.port, 200, args.seconds, "--burst", "20")
            scraper.phase = "idle"
            time.sleep(2 * SCRAPE_EVERY)
        finally:
            scraper.stop.set()
            scraper.join(10)
    data = args.out / "metrics-run.json"
    data.write_text(json.dumps({"scrape_every": SCRAPE_EVERY, "series": scraper.series}))
    print(f"{len(scraper.series)} scrapes -> {data}")
    if not peers.has_matplotlib():
        print("chart skipped: matplotlib is only installed in benchmarks/.venv-peers")
        return 0
    png = args.png or args.out / "metrics-run.png"
    done = subprocess.run(
        [str(servers.PEERS_PYTHON), str(servers.BENCH_DIR / "metrics_plot.py"), str(data),
         str(png)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        print("chart failed: " + done.stderr.strip()[-400:])
        return 1
    print(f"chart -> {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
