"""``python -m benchmarks soak --minutes N``: does anything in one server process grow for ever?

One process of our server (``--loop uvloop``, access log off) serves the soak's app
(``benchmarks/apps/bench_django/asgi_soak.py``) on 127.0.0.1 with the in-memory channel layer
(``--layer redis``: a throw-away redis-server and the Redis layer).  For the whole run a steady,
deliberately modest mix of load runs against it (the goal is time, not throughput; the machine
is shared):

* HTTP/1.1 keep-alive GETs of a Django view on a few connections, at a fixed total rate;
* WebSocket echo clients, each sending a message at a fixed rate and awaiting its echo;
* group fan-out: persistent members of one group, a trigger client ``group_send``-ing to them;
* churn: chat clients that connect (``group_add``), send one message, receive it back through
  the room's group, and close (``group_discard``), a steady number per second.

(The clients are in ``benchmarks/soak_load.py``; this module samples, judges and reports.)

Every ``--interval`` seconds it samples, from /proc, the server's RSS and open file descriptors
and, from the app's debug endpoint ``/soak/stats``, the asyncio tasks on the server's loop, the
live Python objects and the channel layer's sizes (channels with a mailbox, groups, messages
waiting; with Redis also the keys in Redis).  It writes ``<out>/<name>.json`` (every sample, the
verdicts, what the load did) and ``<out>/<name>.png`` (one panel per series), and exits 1 when a
series grows without bound, the load saw errors, or the server died.

"Grows without bound" is judged on the second half of the samples (the first half is warm-up:
caches, pymalloc arenas and the allocator reach their working size there) by the least-squares
line through them: its rise over the second half must stay within a tolerance that covers what
a flat server still shows (see :func:`tolerances`).  The rise, not the slope, is compared, so a
short run does not flag a slow drift it cannot tell from noise, and a long run (ten minutes:
thousands of connections) shows any per-connection leak far above the tolerance.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import machine, proctree, redis_server, servers
from benchmarks.soak_load import HOST, LIMIT, Load, Mix

APP = "bench_django.asgi_soak:application"
RESULTS = servers.BENCH_DIR / "results"
# Series judged for growth, with the unit shown.
SERIES = {
    "rss_mib": "MiB",
    "fds": "fds",
    "tasks": "tasks",
    "objects": "objects",
    "layer_channels": "channels",
    "layer_groups": "groups",
    "layer_buffered": "messages",
    "redis_keys": "keys",
}


def tolerances(mix: Mix, level: dict[str, float]) -> dict[str, float]:
    """How much each series may rise over the second half of a flat run.

    Counts (fds, tasks, objects, layer sizes) of a flat server still move with the transient
    connections open at the moment of a sample (churn, the sampler's request).  For values
    bounded within a band of height ``A``, the least-squares line's rise across the window can
    reach 1.5 ``A`` (all samples low in the first half, high in the second), hence the 1.5.
    """
    per_conn_tasks = 3  # the connection's app task, a consumer's dispatch and its layer receive
    # Scope, consumer, Django request machinery, buffers: a 20 s run moved by about 400 per
    # transient connection (2.5k objects with up to 6 of them open).
    per_conn_objects = 600
    band = {
        "fds": mix.transient,
        "tasks": per_conn_tasks * mix.transient,
        "objects": max(per_conn_objects * mix.transient, 0.01 * level.get("objects", 0.0)),
        "layer_channels": mix.transient,
        # A chat room exists while someone is in it; at most every room, plus the fan-out group.
        "layer_groups": mix.chat_rooms + 1,
        # A fan-out burst or echo in flight at the sample.
        "layer_buffered": mix.group_members + mix.echo_clients + mix.transient,
        "redis_keys": mix.chat_rooms + 2 * mix.transient,
    }
    tol = {name: 1.5 * value for name, value in band.items()}
    # RSS: pymalloc allocates 1 MiB arenas and frees an arena only when every object in it is
    # gone, so a flat process still moves by a few arenas with fragmentation; glibc's heap
    # trims in steps of its own.  4 MiB, or 2 % of the level for a big process.  (The leak of
    # issue 9 part 2, 2.2 KB per closed connection, at the default 20 connections a second over
    # the second half of a ten-minute run is about 13 MB.)
    tol["rss_mib"] = max(4.0, 0.02 * level.get("rss_mib", 0.0))
    return tol


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through ``(t, y)`` points: ``(slope per second, intercept)``."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0, mean_y
    slope = sum((t - mean_t) * (y - mean_y) for t, y in points) / var
    return slope, mean_y - slope * mean_t


def verdicts(samples: list[dict[str, Any]], mix: Mix) -> dict[str, dict[str, Any]]:
    """One verdict per series present in the samples (see the module docstring)."""
    half = samples[len(samples) // 2 :]
    out: dict[str, dict[str, Any]] = {}
    levels: dict[str, float] = {}
    series: dict[str, list[tuple[float, float]]] = {}
    for name in SERIES:
        points = [(s["t"], float(s[name])) for s in half if s.get(name) is not None]
        if len(points) >= 3:
            series[name] = points
            levels[name] = sum(y for _, y in points) / len(points)
    tol = tolerances(mix, levels)
    for name, points in series.items():
        slope, intercept = fit(points)
        span = points[-1][0] - points[0][0]
        rise = slope * span
        out[name] = {
            "unit": SERIES[name],
            "level": levels[name],
            "slope_per_min": slope * 60,
            "intercept": intercept,
            "from_t": points[0][0],
            "to_t": points[-1][0],
            "rise": rise,
            "tolerance": tol[name],
            "ok": rise <= tol[name],
        }
    return out


# --- sampling ------------------------------------------------------------------------------
async def debug_stats(port: int) -> dict[str, Any]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), LIMIT)
    try:
        writer.write(
            f"GET /soak/stats HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
        )
        data = await asyncio.wait_for(reader.read(), LIMIT)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"/soak/stats answered {head[:40]!r}")
    result: dict[str, Any] = json.loads(body)
    return result


def redis_counts(url: str) -> int:
    """Keys in the Redis database (one RESP command on a plain socket)."""
    import socket

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection((HOST, port), timeout=LIMIT) as s:
        s.sendall(b"DBSIZE\r\n")
        reply = s.recv(64)
    return int(reply[1:].split(b"\r\n")[0])


async def sample(pid: int, port: int, started: float, redis_url: str | None) -> dict[str, Any]:
    stats = await debug_stats(port)
    layer = stats.get("layer", {})
    point: dict[str, Any] = {
        "t": round(time.monotonic() - started, 2),
        "rss_mib": proctree.rss_bytes(pid) / 2**20,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "tasks": stats["tasks"],
        "objects": stats["objects"],
        "layer_channels": layer.get("channels"),
        "layer_groups": layer.get("groups"),
        "layer_buffered": layer.get("buffered_messages"),
        "cpu_s": proctree.cpu_seconds(pid),
    }
    if redis_url is not None:
        point["redis_keys"] = await asyncio.to_thread(redis_counts, redis_url)
    return point


async def drive(
    srv: servers.Running, mix: Mix, seconds: float, interval: float, redis_url: str | None
) -> tuple[list[dict[str, Any]], Load, list[str]]:
    load = Load(srv.port, mix)
    problems: list[str] = []
    tasks = [
        asyncio.create_task(load.fanout_run()),
        *(asyncio.create_task(load.http_client()) for _ in range(mix.http_connections)),
        *(asyncio.create_task(load.echo_client(i)) for i in range(mix.echo_clients)),
        asyncio.create_task(load.churn_run()),
    ]
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    next_at = started
    try:
        while True:
            if srv.proc.poll() is not None:
                problems.append(f"the server exited with status {srv.proc.returncode}")
                break
            try:
                point = await sample(srv.pid, srv.port, started, redis_url)
            except (OSError, TimeoutError, RuntimeError, ValueError, KeyError) as exc:
                problems.append(f"sample at {time.monotonic() - started:.0f} s failed: {exc!r}")
            else:
                samples.append(point)
                print(_progress(point, load), flush=True)
            next_at += interval
            if next_at - started > seconds:
                break
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))  # the sampling period
    finally:
        load.stop.set()
        await asyncio.wait(tasks, timeout=3 * LIMIT)
        for task in tasks:
            if not task.done():
                task.cancel()
                problems.append("a load task did not stop")
            elif not task.cancelled() and task.exception() is not None:
                problems.append(f"a load task failed: {task.exception()!r}")
    return samples, load, problems


def _progress(point: dict[str, Any], load: Load) -> str:
    layer = (
        f" layer ch={point['layer_channels']} groups={point['layer_groups']}"
        f" buffered={point['layer_buffered']}"
    )
    redis = f" keys={point['redis_keys']}" if "redis_keys" in point else ""
    return (
        f"  t={point['t']:>6.0f}s rss={point['rss_mib']:.1f}MiB fds={point['fds']}"
        f" tasks={point['tasks']} objects={point['objects']}{layer}{redis}"
        f"  http={load.http.ok} echo={load.echo.ok} churn={load.churn.ok} bursts={load.bursts}"
        f" errors={load.errors}"
    )


# --- the command ---------------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "soak",
        help="mixed load against one server for a while; fail if anything grows without bound",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=None, help="length of the run (10)")
    length.add_argument("--seconds", type=float, default=None, help="length in seconds (tests)")
    p.add_argument(
        "--interval", type=float, default=None, help="seconds between samples (5; less if short)"
    )
    p.add_argument("--layer", choices=("memory", "redis"), default="memory")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--name", default="soak", help="file stem of the results")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG chart")


def run(args: argparse.Namespace) -> int:
    seconds = 60 * (args.minutes if args.minutes is not None else 10.0)
    if args.seconds is not None:
        seconds = args.seconds
    if seconds <= 0:
        print("soak: the length must be positive", file=sys.stderr)
        return 2
    # About 20 samples at least, but never more than one a second... nor less than one per 5 s.
    interval = args.interval or min(5.0, max(1.0, seconds / 20))
    mix = Mix()
    log_dir = args.out / "tmp" / "logs"
    started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    print(f"soak: {seconds:.0f} s, a sample every {interval:g} s, {args.layer} layer", flush=True)
    with contextlib.ExitStack() as stack:
        redis_url: str | None = None
        env = {"BENCH_LAYER": args.layer}
        if args.layer == "redis":
            if not redis_server.available():
                print("soak: redis-server not found", file=sys.stderr)
                return 2
            redis_url = stack.enter_context(redis_server.running(log_dir, None))
            env["BENCH_REDIS_URL"] = redis_url
        try:
            srv = stack.enter_context(
                servers.running(
                    servers.SERVERS["ours"],
                    APP,
                    core=None,
                    log_dir=log_dir,
                    tag="soak",
                    env=env,
                    django=True,
                )
            )
        except RuntimeError as exc:
            print(f"soak: {exc}", file=sys.stderr)
            return 1
        samples, load, problems = asyncio.run(drive(srv, mix, seconds, interval, redis_url))
        log_tail = servers.log_tail(srv.log_path, 20)
    judged = verdicts(samples, mix) if len(samples) >= 6 else {}
    if len(samples) < 6:
        problems.append(f"only {len(samples)} samples: run longer or sample more often")
    if load.errors:
        problems.append(f"the load saw {load.errors} errors (see load in the JSON)")
    grew = [name for name, v in judged.items() if not v["ok"]]
    passed = not grew and not problems
    doc = {
        "meta": {
            "started": started_at,
            "seconds": seconds,
            "interval": interval,
            "layer": args.layer,
            "mix": asdict(mix),
            "server": " ".join(servers.SERVERS["ours"].argv(APP, srv.port)[1:]),
            "machine": machine.describe(),
            "loadavg_at_end": os.getloadavg(),
        },
        "passed": passed,
        "grew": grew,
        "problems": problems,
        "verdicts": judged,
        "load": load.summary(),
        "samples": samples,
        "server_log_tail": log_tail,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{args.name}.json"
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(report(doc))
    print(f"results: {json_path}")
    if not args.no_plot:
        plot(json_path, args.out / f"{args.name}.png")
    return 0 if passed else 1


def report(doc: dict[str, Any]) -> str:
    lines = ["", "series (second half)      level    rise   tolerance  slope/min  verdict"]
    for name, v in doc["verdicts"].items():
        lines.append(
            f"  {name:<20} {v['level']:>10.1f} {v['rise']:>7.1f} {v['tolerance']:>11.1f}"
            f" {v['slope_per_min']:>10.2f}  {'ok' if v['ok'] else 'GROWS'}"
        )
    for problem in doc["problems"]:
        lines.append(f"  problem: {problem}")
    lines.append("PASS" if doc["passed"] else "FAIL")
    return "\n".join(lines)


def plot(json_path: Path, png_path: Path) -> None:
    """Draw the chart with the peers' interpreter (matplotlib lives there, see plot.py)."""
    from benchmarks import peers

    if not peers.has_matplotlib():
        # As ``benchmarks run`` does for the peers: the venv is created on first use, here
        # with matplotlib only (``run`` adds the peers later).
        print(f"installing matplotlib into {servers.PEERS_VENV} (one time, needs PyPI) ...")
        try:
            if not servers.PEERS_PYTHON.exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(servers.PEERS_VENV)], check=True, timeout=300
                )
            subprocess.run(
                [str(servers.PEERS_PYTHON), "-m", "pip", "install", "-q", "matplotlib"],
                check=True,
                timeout=600,
                capture_output=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"chart skipped: could not install matplotlib ({exc})")
            return
    error = peers.draw("soak_plot.py", json_path, png_path)
    if error is not None:
        print("chart failed: " + error)
    else:
        print(f"chart: {png_path}")
