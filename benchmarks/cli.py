"""``python -m benchmarks run [--quick]``: every workload, this server and its peers, one run.

Writes ``benchmarks/results/latest.{json,md,png}`` and prints the targets with PASS/FAIL.
``python -m benchmarks soak --minutes N``: see ``benchmarks/soak.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import machine, peers, procs, redis_cluster, redis_server, report, servers, soak
from benchmarks.loadgen import h2load, wrk
from benchmarks.workloads import Settings, Workload, catalog, measure

RESULTS = servers.BENCH_DIR / "results"

# Quick mode measures only the peers each target names; full mode measures every peer.
QUICK = {
    "A": ("ours", "granian", "uvicorn-httptools"),
    "B": ("ours", "uvicorn-httptools", "daphne"),
    "C": ("ours", "uvicorn-httptools", "daphne"),
    "D": ("ours", "uvicorn-httptools"),
    "E": ("ours", "uvicorn-httptools"),
    "H": ("ours", "hypercorn", "granian"),
    "H2-TLS": ("ours", "daphne", "hypercorn", "granian"),
}
# The peers that serve h2c with prior knowledge (uvicorn has no HTTP/2; Daphne's needs TLS).
H2_SERVERS = ("ours", "hypercorn", "granian")
# WebSocket over HTTP/2 (RFC 8441): Granian does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL,
# Daphne's Twisted HTTP/2 has no extended CONNECT either, uvicorn no HTTP/2.
H2WS_SERVERS = ("ours", "hypercorn")
# HTTP/2 over TLS: every server with an HTTP/2 stack, Daphne included.
H2TLS_SERVERS = ("ours", "daphne", "hypercorn", "granian")
ALL = ("ours", *servers.PEER_NAMES)
# Measured only when named in --servers: our server with --metrics-port on, for the metrics
# overhead comparison (`--servers ours,ours-metrics --workloads A,C`).
OPTIONAL = ("ours-metrics",)
# Thousands of connections cost upstream Channels minutes per peer (its in-memory layer does
# work proportional to the number of channels on every send/receive), so full mode measures
# these against the peers the targets name only; --servers overrides.
BIG = {"D": ("ours", "uvicorn-httptools"), "E": ("ours", "uvicorn-httptools", "daphne")}


def settings_for(args: argparse.Namespace, log_dir: Path) -> Settings:
    cores = sorted(os.sched_getaffinity(0))
    two = len(cores) >= 2
    s = Settings(
        mode=args.mode,
        warmup=2.0,
        duration=4.0,
        repeats=3,
        wrk_connections=64,
        echo_clients=50,
        fanout_sizes=(500, 5000),
        idle_clients=10_000,
        round_deliveries=10_000,
        latency_rounds=10,
        server_core=cores[0] if two else None,
        load_core=cores[1] if two else None,
        log_dir=log_dir,
    )
    if args.mode == "quick":
        s.warmup, s.duration, s.fanout_sizes, s.idle_clients = 1.0, 1.0, (500,), 1000
        s.round_deliveries, s.latency_rounds, s.extra_windows = 5000, 5, 2
    elif args.mode == "smoke":
        s.warmup, s.duration, s.repeats, s.fanout_sizes, s.idle_clients = 0.3, 1.0, 2, (50,), 100
        s.echo_clients, s.round_deliveries, s.latency_rounds, s.extra_windows = 10, 500, 3, 0
        s.scale_workers = (2,)
    for name in ("warmup", "duration", "repeats", "extra_windows", "max_contention"):
        value = getattr(args, name)
        if value is not None:
            setattr(s, name, value)
    return s


def servers_for(w: Workload, args: argparse.Namespace) -> list[str]:
    if w.servers:
        if args.servers and w.id.startswith("D-scale"):
            return [n for n in w.servers if n in args.servers]
        return list(w.servers)
    names = QUICK.get(w.id, QUICK[w.id[0]]) if args.mode == "quick" else ALL
    if args.mode == "full" and w.clients >= 2000:
        names = BIG[w.id[0]]
    if args.servers:
        names = tuple(n for n in args.servers if n in ALL + OPTIONAL)
    only = {"h2": H2_SERVERS, "h2ws": H2WS_SERVERS, "h2tls": H2TLS_SERVERS}.get(w.kind)
    if only is not None:
        names = tuple(n for n in names if n in only)
    return list(names)


def _parse_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmarks")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="short windows, fewer clients, only the peers the targets name "
        "(under 3 minutes once the peers are installed)",
    )
    mode.add_argument(
        "--smoke",
        dest="mode",
        action="store_const",
        const="smoke",
        help="tiny durations, for the test suite",
    )
    r.set_defaults(mode="full")
    r.add_argument(
        "--servers",
        type=_parse_list,
        default=None,
        help=f"comma-separated subset of: {', '.join(ALL + OPTIONAL)}",
    )
    r.add_argument(
        "--workloads",
        type=_parse_list,
        default=None,
        help="comma-separated workload ids or letters (A, B, B-plain, D-redis-500...)",
    )
    r.add_argument("--duration", type=float, default=None, help="seconds per window")
    r.add_argument("--warmup", type=float, default=None, help="warm-up seconds")
    r.add_argument("--repeats", type=int, default=None, help="measured windows (median)")
    r.add_argument(
        "--extra-windows",
        type=int,
        default=None,
        help="windows to redo when other processes took the server's core",
    )
    r.add_argument(
        "--max-contention",
        type=float,
        default=None,
        help="%% of the server's core other processes may use in a kept window (default 15)",
    )
    r.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    r.add_argument("--name", default="latest", help="file stem of the results")
    r.add_argument(
        "--no-install",
        action="store_true",
        help="never pip-install the peers (skip peers that are not installed)",
    )
    r.add_argument("--no-redis", action="store_true", help="skip the Redis fan-out workloads")
    r.add_argument("--no-plot", action="store_true", help="skip the PNG chart")
    r.add_argument(
        "--ours-args",
        type=shlex.split,
        default=[],
        help='extra arguments for our server, e.g. "--loop asyncio"',
    )
    soak.add_parser(sub)  # python -m benchmarks soak: see benchmarks/soak.py
    args = p.parse_args(argv)
    if args.command == "soak":
        return args
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.extra_windows is not None and args.extra_windows < 0:
        p.error("--extra-windows must not be negative")
    for name in ("duration", "warmup"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            p.error(f"--{name} must be positive")
    unknown = [n for n in args.servers or () if n not in ALL + OPTIONAL]
    if unknown:
        p.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(ALL + OPTIONAL)}")
    return args


def _selected(w: Workload, wanted: list[str] | None) -> bool:
    if not wanted:
        return True
    # "B" selects B-plain and B-router, "D-redis" every Redis fan-out size.
    return any(w.id == x or w.id.startswith(x + "-") for x in wanted)


def _raise_nofile() -> None:
    """Workload E opens 10,000 sockets per side; children inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _summary_line(w: Workload, name: str, r: dict[str, Any]) -> str:
    if r.get("status") == "failed":
        return f"  {name:<18} FAILED: {str(r.get('error', '')).splitlines()[0][:150]}"
    extra = ""
    for key, label in (("non_2xx", "non-2xx"), ("errors", "errors"), ("lost", "lost")):
        if r.get(key):
            extra += f"  {label}={r[key]}"
    cpu = r.get("server_cpu_pct")
    load = r.get("loadgen_cpu_pct")
    if cpu is not None and load is not None:
        extra += f"  cpu server={cpu:.0f}% loadgen={load:.0f}%"
    return f"  {name:<18} {r.get('value', float('nan')):>12,.1f} {w.metric}{extra}"


@contextlib.contextmanager
def _maybe_redis(args: argparse.Namespace, s: Settings) -> Iterator[None]:
    if args.no_redis or not redis_server.available():
        if not args.no_redis:
            print("redis-server not found: skipping the Redis fan-out workloads", flush=True)
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            s.redis_url = stack.enter_context(redis_server.running(s.log_dir, s.server_core))
        except (RuntimeError, OSError) as exc:
            print(f"redis-server did not start ({exc}): skipping the Redis workloads", flush=True)
        cluster_ids = [f"D-scale-cluster-w{n}" for n in s.scale_workers]
        wanted = any(_selected(Workload(i, "", "", "", ""), args.workloads) for i in cluster_ids)
        if wanted and redis_cluster.available():
            try:
                s.cluster_urls = stack.enter_context(
                    redis_cluster.running(s.log_dir, s.server_core)
                )
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                print(f"Redis Cluster did not start ({exc}): skipping D-scale-cluster", flush=True)
        yield


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    _raise_nofile()
    servers.OURS_EXTRA[:] = args.ours_args
    log_dir = args.out / "tmp" / "logs"
    s = settings_for(args, log_dir)
    if s.server_core is None:
        print(
            "warning: fewer than 2 usable CPUs, server and load generator are not pinned",
            flush=True,
        )
    probe = catalog(s)
    wanted_peers = {
        n
        for w in probe
        if _selected(w, args.workloads)
        for n in servers_for(w, args)
        if n in servers.PEER_NAMES
    }
    if wanted_peers and not peers.ready():
        if args.no_install:
            print("peers are not installed (--no-install): measuring ours only", flush=True)
            args.servers = ["ours"]
        else:
            try:
                peers.ensure()
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                print(f"could not install the peers, measuring ours only: {exc}", flush=True)
                args.servers = ["ours"]
    if not wrk.available():
        print("wrk not found: the HTTP workloads will be reported as failed", flush=True)

    doc: dict[str, Any] = {
        "meta": {
            "mode": s.mode,
            "started": started_at,
            "elapsed_s": 0.0,
            "warmup": s.warmup,
            "duration": s.duration,
            "repeats": s.repeats,
            "wrk_connections": s.wrk_connections,
            "server_core": s.server_core,
            "load_core": s.load_core,
            "max_contention_pct": s.max_contention,
            "extra_windows": s.extra_windows,
            "machine": machine.describe(),
            "peers": peers.versions() if wanted_peers else {},
            "labels": {n: spec.label for n, spec in servers.SERVERS.items()},
            "ours_args": args.ours_args,
            "complete": False,
        },
        "workloads": {},
        "targets": [],
    }
    try:
        with _maybe_redis(args, s):
            planned = catalog(s)
            for x in args.workloads or ():
                if not any(_selected(w, [x]) for w in planned):
                    known = ", ".join(w.id for w in planned)
                    print(f"warning: no workload matches {x!r} (known: {known})", flush=True)
            for w in planned:
                if not _selected(w, args.workloads):
                    continue
                names = servers_for(w, args)
                if not names:
                    continue
                print(f"{w.title}", flush=True)
                entry: dict[str, Any] = {
                    "title": w.title,
                    "kind": w.kind,
                    "metric": w.metric,
                    "higher_is_better": w.higher_is_better,
                    "ratio_base": w.ratio_base,
                    "results": {},
                }
                doc["workloads"][w.id] = entry
                for name in names:
                    if w.layer == "redis" and s.redis_url:
                        redis_server.flush(s.redis_url)
                    if w.layer == "cluster" and s.cluster_urls:
                        redis_cluster.flush(s.cluster_urls)
                    if not wrk.available() and w.kind == "http":
                        r: dict[str, Any] = {"status": "failed", "error": "wrk not installed"}
                    elif not h2load.available() and w.kind in ("h2", "h2tls"):
                        r = {"status": "failed", "error": "h2load not installed"}
                    else:
                        r = measure(w, servers.SERVERS[name], s)
                    entry["results"][name] = r
                    print(_summary_line(w, name, r), flush=True)
        doc["meta"]["complete"] = True
        return 0
    except KeyboardInterrupt:
        print("interrupted: writing the partial results", file=sys.stderr)
        return 130
    finally:
        procs.kill_all()
        doc["meta"]["elapsed_s"] = time.monotonic() - started
        doc["meta"]["loadavg_at_end"] = os.getloadavg()
        report.add_ratios(doc["workloads"])
        doc["targets"] = report.evaluate_targets(doc["workloads"])
        json_path, md_path = report.write(doc, args.out, args.name)
        print(f"\nresults: {json_path}\n         {md_path}")
        if not args.no_plot:
            _plot(json_path, args.out / f"{args.name}.png")
        print("\nTargets:")
        for t in doc["targets"]:
            measured = "-" if t["measured"] is None else f"{t['measured']:.2f}"
            print(f"  [{t['status']:>4}] {t['target']}  (measured {measured})")
        print(f"elapsed {doc['meta']['elapsed_s']:.0f} s")


def _plot(json_path: Path, png_path: Path) -> None:
    if not peers.has_matplotlib():
        print("chart skipped: matplotlib is only installed in benchmarks/.venv-peers")
        return
    error = peers.draw("plot.py", json_path, png_path)
    if error is not None:
        print("chart failed: " + error)
    else:
        print(f"         {png_path}")


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.command == "soak":
        try:
            return soak.run(args)
        except KeyboardInterrupt:
            return 130
        finally:
            procs.kill_all()
    return run(args)
