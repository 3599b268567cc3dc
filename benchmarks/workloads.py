"""The workloads (A to F) and how one (workload, server) pair is measured.

Each measurement: start the server pinned to ``server_core``; warm up; ``repeats`` fixed-length
windows with the load generator pinned to ``load_core``; the median window is the figure.
Non-2xx responses, socket errors, failed connections and lost messages are summed, never hidden.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from benchmarks import servers
from benchmarks.loadgen import h2load, wrk
from benchmarks.loadgen.external import LoadResult
from benchmarks.windows import WindowPlan

R = TypeVar("R", bound=LoadResult)

RAW_APP = "bench_raw:app"
# WebSocket sessions per HTTP/2 connection in workload H2-WS (as a browser tab multiplexes).
H2WS_STREAMS = 10
H2TLS_MIN_SECONDS = 3
PLAIN_APP = "bench_django.asgi_plain:application"
ROUTER_APP = "bench_django.asgi_router:application"


@dataclass
class Settings:
    mode: str  # "smoke", "quick" or "full"
    warmup: float
    duration: float
    repeats: int
    wrk_connections: int
    echo_clients: int
    fanout_sizes: tuple[int, ...]
    idle_clients: int
    round_deliveries: int  # fan-out: messages per burst = this / clients (1..20)
    latency_rounds: int
    server_core: int | None
    load_core: int | None
    log_dir: Path
    redis_url: str | None = None
    cluster_urls: list[str] | None = None  # workload D-scale on a 3-primary Redis Cluster
    scale_workers: tuple[int, ...] = (1, 2, 4)
    # Windows where other processes took more than this % of the server's core are redone,
    # at most extra_windows times per measurement (see windows.py).
    max_contention: float = 15.0
    extra_windows: int = 3

    @property
    def http_seconds(self) -> int:
        # wrk only takes whole seconds.
        return max(1, round(self.duration))


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    kind: str  # "http", "h2", "h2tls", "echo", "h2ws", "fanout" or "idle"
    app: str
    metric: str
    higher_is_better: bool = True
    django: bool = False
    clients: int = 0
    layer: str = "memory"  # "memory", "redis" or "cluster"
    burst: int = 1
    workers: int = 1  # server worker processes (--workers); group members spread over them
    # The workload whose "ours" figure this one is compared with (F is compared with A).
    ratio_base: str | None = None
    servers: tuple[str, ...] = field(default=())
    # HTTP workloads: the wrk Lua script that writes the requests (benchmarks/loadgen/lua).
    script: str | None = None


def catalog(s: Settings) -> list[Workload]:
    items = [
        Workload(
            "A-varied",
            "A-varied: hello world, browser-like heads that differ on every request",
            "http",
            RAW_APP,
            "req/s",
            script="varied.lua",
        ),
        Workload(
            "A",
            "A: hello world, raw ASGI, HTTP keep-alive (the same head repeated)",
            "http",
            RAW_APP,
            "req/s",
        ),
        Workload(
            "A-close-10",
            "A-close-10: a new connection per request, HTTP/1.0 (as nginx proxies)",
            "http",
            RAW_APP,
            "req/s",
            script="close10.lua",
        ),
        Workload(
            "A-close-11",
            "A-close-11: a new connection per request, HTTP/1.1 Connection: close",
            "http",
            RAW_APP,
            "req/s",
            script="close11.lua",
        ),
        Workload(
            "F",
            "F: ceiling, bare uvloop Protocol with a canned response",
            "http",
            RAW_APP,
            "req/s",
            ratio_base="A",
            servers=("bare-uvloop",),
        ),
        Workload(
            "B-plain",
            "B: Django async view, get_asgi_application()",
            "http",
            PLAIN_APP,
            "req/s",
            django=True,
        ),
        Workload(
            "B-router",
            "B: Django async view behind ProtocolTypeRouter",
            "http",
            ROUTER_APP,
            "req/s",
            django=True,
        ),
        Workload(
            "C",
            f"C: WebSocket echo, AsyncWebsocketConsumer, {s.echo_clients} clients, 64 B text",
            "echo",
            ROUTER_APP,
            "round trips/s",
            django=True,
            clients=s.echo_clients,
        ),
    ]
    layers = ["memory", "redis"] if s.redis_url else ["memory"]
    for layer in layers:
        for n in s.fanout_sizes:
            # At most 20 per burst: upstream's in-memory layer holds 100 messages per channel.
            # Big groups get single-message bursts, so every measured round is also a
            # "time for one broadcast to reach all" sample.
            burst = max(1, min(20, s.round_deliveries // n)) if n < 2000 else 1
            items.append(
                Workload(
                    f"D-{layer}-{n}",
                    f"D: group fan-out, {n} clients, {layer} layer, bursts of {burst}",
                    "fanout",
                    ROUTER_APP,
                    "deliveries/s",
                    django=True,
                    clients=n,
                    layer=layer,
                    burst=burst,
                )
            )
    items += scale_catalog(s)
    items.append(
        Workload(
            "H2",
            f"H2: hello world, raw ASGI, HTTP/2 (h2c), {h2load.STREAMS} streams per connection",
            "h2",
            RAW_APP,
            "req/s",
        )
    )
    items.append(
        Workload(
            "H2-WS",
            f"H2-WS: WebSocket echo over HTTP/2 (RFC 8441, h2c), AsyncWebsocketConsumer, "
            f"{s.echo_clients} clients, {H2WS_STREAMS} streams per connection, 64 B text",
            "h2ws",
            ROUTER_APP,
            "round trips/s",
            django=True,
            clients=s.echo_clients,
        )
    )
    items.append(
        Workload(
            "H2-TLS",
            f"H2-TLS: hello world, raw ASGI, HTTP/2 over TLS (ALPN h2), "
            f"{h2load.STREAMS} streams per connection",
            "h2tls",
            RAW_APP,
            "req/s",
        )
    )
    items.append(
        Workload(
            "E",
            f"E: server RSS with {s.idle_clients} idle WebSocket connections",
            "idle",
            ROUTER_APP,
            "MiB RSS",
            higher_is_better=False,
            django=True,
            clients=s.idle_clients,
        )
    )
    return items


def scale_catalog(s: Settings) -> list[Workload]:
    """D-scale: one group spread over 1, 2, 4 worker processes, on one Redis and on a Redis
    Cluster.  Upstream's channels_redis cannot use a cluster, so the peer (uvicorn with the
    same worker counts) runs on single Redis only."""
    n = s.fanout_sizes[0]
    burst = max(1, min(20, s.round_deliveries // n))
    items: list[Workload] = []
    for layer, peers in (("redis", ("ours", "uvicorn-httptools")), ("cluster", ("ours",))):
        if (s.redis_url if layer == "redis" else s.cluster_urls) is None:
            continue
        for workers in s.scale_workers:
            where = "one Redis" if layer == "redis" else "Redis Cluster (3 primaries)"
            items.append(
                Workload(
                    f"D-scale-{layer}-w{workers}",
                    f"D-scale: group fan-out, {n} clients over {workers} worker(s), {where}, "
                    f"bursts of {burst}",
                    "fanout",
                    ROUTER_APP,
                    "deliveries/s",
                    django=True,
                    clients=n,
                    layer=layer,
                    burst=burst,
                    workers=workers,
                    servers=peers,
                )
            )
    return items


def _median(values: list[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")


def measure(w: Workload, spec: servers.ServerSpec, s: Settings) -> dict[str, Any]:
    """Start the server, run the workload, stop the server; a result dict (never raises for a
    server that fails: the failure is the result)."""
    # Other work on the machine shows up here (2 shared cores): recorded with every figure.
    load_before = os.getloadavg()[0]
    env = {"BENCH_LAYER": w.layer}
    if w.layer == "redis" and s.redis_url:
        env["BENCH_REDIS_URL"] = s.redis_url
    if w.layer == "cluster" and s.cluster_urls:
        env["BENCH_LAYER"] = "redis"
        env["BENCH_REDIS_URL"] = ",".join(s.cluster_urls)
    try:
        tls = servers.self_signed(s.log_dir / "tls") if w.kind == "h2tls" else None
        with servers.running(
            spec,
            w.app,
            core=s.server_core,
            log_dir=s.log_dir,
            tag=w.id,
            env=env,
            django=w.django,
            workers=w.workers,
            tls=tls,
        ) as srv:
            if w.kind == "http":
                result = _http(srv, s, w.script)
            elif w.kind in ("h2", "h2tls"):
                result = _h2(srv, s, tls=w.kind == "h2tls")
            else:
                result = _ws(w, srv, s)
            result["stack"] = srv.info
            result["loadavg_1m_before"] = load_before
            return result
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        return {"status": "failed", "error": str(exc)}


def _runner(
    run: Callable[..., R], srv: servers.Running, s: Settings, **options: Any
) -> Callable[[int], R]:
    """One run of ``seconds`` of a load tool (``wrk.run``, ``h2load.run``) against ``srv``."""

    def once(seconds: int) -> R:
        return run(
            srv.port,
            "/",
            seconds=seconds,
            connections=s.wrk_connections,
            core=s.load_core,
            server_pid=srv.pid,
            server_core=s.server_core,
            **options,
        )

    return once


def _http(srv: servers.Running, s: Settings, script: str | None = None) -> dict[str, Any]:
    once = _runner(wrk.run, srv, s, script=script)
    once(max(1, round(s.warmup)))
    runs, result = _windows(once, s)
    return {
        **result,
        "p50_ms": _median([r.p50_ms for r in runs]),
        "p99_ms": _median([r.p99_ms for r in runs]),
        "errors": sum(r.socket_errors for r in runs),
        "loadgen": "wrk -t1" + (f" -s {script}" if script else ""),
    }


def _h2(srv: servers.Running, s: Settings, *, tls: bool = False) -> dict[str, Any]:
    run = _runner(h2load.run, srv, s, scheme="https" if tls else "http")

    def once(seconds: int) -> h2load.H2loadResult:
        # h2load -D hangs when its time is up while TLS handshakes are still going on
        # (Daphne takes over a second for 64 of them): TLS windows last 3 s at least.
        return run(max(seconds, H2TLS_MIN_SECONDS) if tls else seconds)

    first = once(max(1, round(s.warmup)))
    expected = "h2" if tls else "h2c"
    if first.protocol != expected:
        raise RuntimeError(f"h2load did not speak {expected} (got {first.protocol or 'nothing'})")
    runs, result = _windows(once, s)
    return {
        **result,
        "mean_ms": _median([r.mean_ms for r in runs]),
        "max_ms": _median([r.max_ms for r in runs]),
        "errors": sum(r.failed + r.errored for r in runs),
        "loadgen": f"h2load -t1 -m{h2load.STREAMS}" + (" (https)" if tls else ""),
    }


def _windows(once: Callable[[int], R], s: Settings) -> tuple[list[R], dict[str, Any]]:
    """Measurement windows of ``s.http_seconds`` until the plan has enough uncontended ones;
    the kept runs and the result fields every load tool reports."""
    plan = WindowPlan(s.repeats, s.extra_windows, s.max_contention)
    runs: list[R] = []
    discarded: list[R] = []
    while plan.more():
        r = once(s.http_seconds)
        (runs if plan.keep(r.others_on_server_core_pct) else discarded).append(r)
    return runs, {
        "discarded_windows": [
            {"rate": r.rate, "others_on_server_core_pct": r.others_on_server_core_pct}
            for r in discarded
        ],
        "status": "ok",
        "value": _median([r.rate for r in runs]),
        "repeats": [r.rate for r in runs],
        "requests": sum(r.requests for r in runs),
        "non_2xx": sum(r.non_2xx for r in runs),
        "server_cpu_pct": _median([r.server_cpu_pct for r in runs]),
        "loadgen_cpu_pct": _median([r.loadgen_cpu_pct for r in runs]),
        "others_on_server_core_pct": _median([r.others_on_server_core_pct for r in runs]),
    }


def _ws(w: Workload, srv: servers.Running, s: Settings) -> dict[str, Any]:
    if w.kind == "h2ws":
        mode = ["benchmarks.loadgen.h2ws", "--streams", str(H2WS_STREAMS)]
    else:
        mode = ["benchmarks.loadgen.ws", w.kind]
    argv = [
        sys.executable,
        "-m",
        *mode,
        "--port",
        str(srv.port),
        "--server-pid",
        str(srv.pid),
        "--clients",
        str(w.clients),
        "--warmup",
        str(s.warmup),
        "--duration",
        str(s.duration),
        "--repeats",
        str(s.repeats),
    ]
    if s.load_core is not None:
        argv += ["--core", str(s.load_core)]
    if s.server_core is not None:
        argv += ["--server-core", str(s.server_core)]
    argv += ["--extra-windows", str(s.extra_windows), "--max-contention", str(s.max_contention)]
    if w.kind == "fanout":
        # With single-message bursts the measured rounds already give the broadcast time.
        rounds = s.latency_rounds if w.burst > 1 else 0
        argv += ["--burst", str(w.burst), "--latency-rounds", str(rounds)]
    # Bounded: connecting, warm-up, the windows and closing, with a generous margin.
    # (fan-out can spend 4 stalled rounds of 20 s plus a 10 s drain before giving up).
    budget = 200 + w.clients / 20 + s.warmup + s.repeats * (s.duration + 30)
    done = subprocess.run(
        argv, cwd=servers.REPO, capture_output=True, text=True, timeout=budget, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(
            f"load generator failed ({done.returncode}): {done.stderr.strip()[-500:]}"
        )
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result: dict[str, Any] = {
        "status": "ok",
        "loadgen": mode[0],
        "raw": out,
        "connect_errors": out["connect_errors"],
    }
    if w.kind == "idle":
        result.update(
            value=out["rss"] / 2**20,
            repeats=[v / 2**20 for v in out["rss_samples"]],
            pss_mib=out["pss"] / 2**20,
            baseline_mib=out["baseline_rss"] / 2**20,
            per_connection_kib=out["per_connection_bytes"] / 1024,
            errors=out["connect_errors"] + (out["connected"] - out["open_at_end"]),
        )
        if out["connected"] < w.clients:
            result["status"] = "partial"
        return result
    windows = out["windows"]
    if not windows:
        return {
            **result,
            "status": "failed",
            "error": "no client could connect: " + "; ".join(out["connect_error_samples"]),
        }
    result.update(
        value=_median([x["rate"] for x in windows]),
        repeats=[x["rate"] for x in windows],
        server_cpu_pct=_median([x["server_cpu_pct"] for x in windows]),
        others_on_server_core_pct=_median([x["others_on_server_core_pct"] for x in windows]),
        loadgen_cpu_pct=_median([x["loadgen_cpu_pct"] for x in windows]),
        errors=out["connect_errors"] + out.get("dropped_connections", 0),
        discarded_windows=out.get("discarded_windows", []),
    )
    if w.kind in ("echo", "h2ws"):
        result.update(
            p50_ms=_median([x["p50_ms"] for x in windows]),
            p99_ms=_median([x["p99_ms"] for x in windows]),
            errors=result["errors"] + sum(x["mismatches"] for x in windows),
        )
    else:
        result.update(
            lost=out["lost"],
            duplicates=out["duplicates_or_reordered"],
            errors=result["errors"] + out["unexpected_messages"],
            broadcast_ms_p50=out["broadcast_ms_p50"],
            broadcast_ms_max=out["broadcast_ms_max"],
        )
    return result
