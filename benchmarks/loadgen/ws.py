"""WebSocket load generator (workloads C, D and E); prints one JSON object on stdout.

    python -m benchmarks.loadgen.ws echo   --port P --clients 50 --duration 5 --repeats 3
    python -m benchmarks.loadgen.ws fanout --port P --clients 500 --burst 20 --duration 5
    python -m benchmarks.loadgen.ws idle   --port P --clients 10000

It runs in its own process (pinned with ``--core``) and reports its own CPU use per measurement
window next to the server's, so a reader can check that the server, not the load generator,
was the saturated side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop

from benchmarks import proctree
from benchmarks.loadgen.wsclient import (
    OP_TEXT,
    WSClient,
    close_all,
    close_codes,
    connect,
    connect_many,
    masked_frame,
)
from benchmarks.windows import WindowPlan

ECHO_PAYLOAD = b"x" * 64
ECHO_FRAME = masked_frame(OP_TEXT, ECHO_PAYLOAD)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Wall time, our CPU and the server tree's CPU over one measurement window."""

    def __init__(self, server_pid: int | None, server_core: int | None) -> None:
        self.server_pid = server_pid
        self.server_core = server_core
        self.core0 = proctree.core_busy_seconds(server_core) if server_core is not None else 0.0
        self.t0 = time.perf_counter()
        self.own0 = own_cpu()
        self.srv0 = proctree.cpu_seconds(server_pid) if server_pid else 0.0

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        srv = proctree.cpu_seconds(self.server_pid) - self.srv0 if self.server_pid else 0.0
        others = float("nan")
        if self.server_core is not None and self.server_pid:
            busy = proctree.core_busy_seconds(self.server_core) - self.core0
            others = max(0.0, 100.0 * (busy - srv) / wall)
        return {
            # Share of the server's core used by other processes during the window.
            "others_on_server_core_pct": others,
            "wall_s": wall,
            # Percent of one core; 100 means that side was saturated.
            "loadgen_cpu_pct": 100.0 * (own_cpu() - self.own0) / wall,
            "server_cpu_pct": 100.0 * srv / wall if self.server_pid else float("nan"),
        }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


# -- C: echo -----------------------------------------------------------------------------------
@dataclass
class EchoState:
    running: bool = True
    measuring: bool = False
    round_trips: int = 0
    mismatches: int = 0
    latencies: list[float] = field(default_factory=list)


async def run_echo(args: argparse.Namespace) -> dict[str, Any]:
    st = EchoState()
    lat = st.latencies

    def on_message(c: WSClient, payload: bytes) -> None:
        now = time.perf_counter()
        if st.measuring:
            lat.append(now - c.sent_at)
            st.round_trips += 1
        if payload != ECHO_PAYLOAD:
            st.mismatches += 1
        if st.running and c.transport is not None and c.is_open:
            c.sent_at = now
            c.transport.write(ECHO_FRAME)

    clients, errors = await connect_many(
        args.host, args.port, args.path, args.clients, on_message, limit_s=args.timeout
    )
    result: dict[str, Any] = {
        "mode": "echo",
        "clients": args.clients,
        "connected": len(clients),
        "connect_errors": len(errors),
        "connect_error_samples": errors[:3],
        "windows": [],
    }
    if not clients:
        return result
    # Closed loop: every client keeps exactly one 64-byte message in flight.
    for c in clients:
        c.sent_at = time.perf_counter()
        c.send_raw(ECHO_FRAME)
    await asyncio.sleep(args.warmup)
    plan = WindowPlan(args.repeats, args.extra_windows, args.max_contention)
    result["discarded_windows"] = []
    while plan.more():
        lat.clear()
        st.round_trips = 0
        st.mismatches = 0
        meter = Meter(args.server_pid, args.server_core)
        st.measuring = True
        await asyncio.sleep(args.duration)
        st.measuring = False
        window = meter.stop()
        values = sorted(lat)
        kept = plan.keep(window["others_on_server_core_pct"])
        result["windows" if kept else "discarded_windows"].append(
            {
                **window,
                "round_trips": st.round_trips,
                "rate": st.round_trips / window["wall_s"],
                "p50_ms": 1000 * percentile(values, 0.50),
                "p99_ms": 1000 * percentile(values, 0.99),
                "mismatches": st.mismatches,
                "open_clients": sum(1 for c in clients if c.is_open),
            }
        )
    st.running = False
    result["dropped_connections"] = sum(1 for c in clients if not c.is_open)
    result["server_close_codes"] = close_codes(clients)
    await close_all(clients)
    return result


# -- D: group fan-out --------------------------------------------------------------------------
@dataclass
class FanoutState:
    delivered: int = 0  # unique, in-order deliveries across all members
    duplicates: int = 0  # a sequence number seen again or out of order
    unexpected: int = 0  # a message that is not one of our sequence numbers
    target: int = 0
    reached_at: float = 0.0
    waiter: asyncio.Future[None] | None = None
    done_waiter: asyncio.Future[None] | None = None


async def _wait_progress(st: FanoutState, quiet: float) -> bool:
    """Wait until ``st.target`` deliveries arrived; False if nothing arrived for ``quiet`` s."""
    loop = asyncio.get_running_loop()
    while st.delivered < st.target:
        seen = st.delivered
        st.waiter = loop.create_future()
        try:
            await asyncio.wait_for(st.waiter, quiet)
        except TimeoutError:
            if st.delivered == seen:
                return False
        finally:
            st.waiter = None
    return True


async def run_fanout(args: argparse.Namespace) -> dict[str, Any]:
    st = FanoutState()
    loop = asyncio.get_running_loop()

    def on_member(c: WSClient, payload: bytes) -> None:
        try:
            seq = int(payload)  # int() ignores the space padding
        except ValueError:
            st.unexpected += 1
            return
        if seq <= c.last_seq:
            st.duplicates += 1
            return
        c.last_seq = seq
        c.count += 1
        st.delivered += 1
        if st.delivered >= st.target:
            if not st.reached_at:
                st.reached_at = time.perf_counter()
            if st.waiter is not None and not st.waiter.done():
                st.waiter.set_result(None)
        elif st.waiter is not None and not st.waiter.done() and not st.delivered & 255:
            # Progress tick so the quiet-timeout only fires when delivery really stalled.
            st.waiter.set_result(None)

    def on_trigger(c: WSClient, payload: bytes) -> None:
        if payload == b"done" and st.done_waiter is not None and not st.done_waiter.done():
            st.done_waiter.set_result(None)

    t_connect = time.perf_counter()
    members, errors = await connect_many(
        args.host, args.port, "/ws/group/", args.clients, on_member, limit_s=args.timeout
    )
    result: dict[str, Any] = {
        "mode": "fanout",
        "clients": args.clients,
        "connect_s": time.perf_counter() - t_connect,
        "connected": len(members),
        "connect_errors": len(errors),
        "connect_error_samples": errors[:3],
        "windows": [],
    }
    if not members:
        return result
    trigger = await connect(args.host, args.port, "/ws/trigger/", on_trigger, args.timeout)
    n = len(members)
    next_seq = 0
    stalled_rounds = 0

    async def one_round(k: int) -> float | None:
        """Broadcast ``k`` messages; seconds until every member had all of them (None: lost)."""
        nonlocal next_seq, stalled_rounds
        st.target = st.delivered + n * k
        st.reached_at = 0.0
        st.done_waiter = loop.create_future()
        t0 = time.perf_counter()
        trigger.send_raw(masked_frame(OP_TEXT, f"burst {k} {next_seq}".encode()))
        next_seq += k
        complete = await _wait_progress(st, args.quiet)
        try:
            await asyncio.wait_for(st.done_waiter, args.quiet)
        except TimeoutError:
            complete = False
        if not complete:
            stalled_rounds += 1
            return None
        return st.reached_at - t0

    # Warm-up, then "time for one broadcast to reach all" with single-message rounds.
    warm_until = time.perf_counter() + args.warmup
    while time.perf_counter() < warm_until:
        await one_round(args.burst)
    single: list[float] = []
    for _ in range(args.latency_rounds):
        took = await one_round(1)
        if took is not None:
            single.append(took)
    plan = WindowPlan(args.repeats, args.extra_windows, args.max_contention)
    result["discarded_windows"] = []
    while plan.more():
        meter = Meter(args.server_pid, args.server_core)
        start = st.delivered
        rounds = 0
        # Whole rounds only, so every measured broadcast is fully delivered or counted lost.
        while rounds == 0 or time.perf_counter() - meter.t0 < args.duration:
            took = await one_round(args.burst)
            rounds += 1
            if args.burst == 1 and took is not None:
                # Each of these rounds is itself one broadcast reaching every member.
                single.append(took)
            if stalled_rounds > 3:
                break
        window = meter.stop()
        kept = plan.keep(window["others_on_server_core_pct"])
        result["windows" if kept else "discarded_windows"].append(
            {
                **window,
                "rounds": rounds,
                "deliveries": st.delivered - start,
                "rate": (st.delivered - start) / window["wall_s"],
            }
        )
        if stalled_rounds > 3:
            break
    single.sort()
    result["broadcast_rounds"] = len(single)
    result["broadcast_ms_p50"] = 1000 * percentile(single, 0.5)
    result["broadcast_ms_max"] = 1000 * single[-1] if single else float("nan")
    expected = n * next_seq
    # Final drain: whatever a slow server still delivers now is late, not lost.
    st.target = expected
    before_drain = st.delivered
    await _wait_progress(st, args.drain)
    result["late_deliveries"] = st.delivered - before_drain
    result["messages_sent"] = next_seq
    result["expected_deliveries"] = expected
    result["lost"] = expected - sum(c.count for c in members)
    result["duplicates_or_reordered"] = st.duplicates
    result["unexpected_messages"] = st.unexpected
    result["stalled_rounds"] = stalled_rounds
    result["dropped_connections"] = sum(1 for c in members if not c.is_open)
    result["server_close_codes"] = close_codes(members)
    await close_all([*members, trigger])
    return result


# -- E: idle connections -----------------------------------------------------------------------
async def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    pid = args.server_pid
    if not pid:
        raise SystemExit("idle mode needs --server-pid")
    echoes = 0
    echoed: asyncio.Future[None] | None = None

    def on_message(c: WSClient, payload: bytes) -> None:
        nonlocal echoes
        echoes += 1
        if echoed is not None and not echoed.done():
            echoed.set_result(None)

    baseline_rss = proctree.rss_bytes(pid)
    baseline_pss = proctree.pss_bytes(pid)
    t0 = time.perf_counter()
    clients, errors = await connect_many(
        args.host,
        args.port,
        args.path,
        args.clients,
        on_message,
        limit_s=args.timeout,
    )
    connect_s = time.perf_counter() - t0
    # Let the server settle (freed handshake buffers, GC) before sampling.
    await asyncio.sleep(args.warmup)
    rss: list[int] = []
    pss: list[int] = []
    for _ in range(args.repeats):
        rss.append(proctree.rss_bytes(pid))
        pss.append(proctree.pss_bytes(pid))
        await asyncio.sleep(0.5)
    # Prove the connections are live: one echo on a few of them.
    alive = 0
    for c in clients[:: max(1, len(clients) // 10)][:10]:
        echoed = asyncio.get_running_loop().create_future()
        c.send_raw(ECHO_FRAME)
        try:
            await asyncio.wait_for(echoed, args.timeout)
            alive += 1
        except TimeoutError:
            pass
    open_now = sum(1 for c in clients if c.is_open)
    codes = close_codes(clients)
    await close_all(clients, limit_s=10.0)
    rss_med = statistics.median(rss)
    return {
        "mode": "idle",
        "clients": args.clients,
        "connected": len(clients),
        "open_at_end": open_now,
        "connect_errors": len(errors),
        "connect_error_samples": errors[:3],
        "connect_s": connect_s,
        "baseline_rss": baseline_rss,
        "baseline_pss": baseline_pss,
        "rss_samples": rss,
        "pss_samples": pss,
        "rss": rss_med,
        "pss": statistics.median(pss),
        "per_connection_bytes": (rss_med - baseline_rss) / max(1, len(clients)),
        "alive_checks": alive,
        "server_close_codes": codes,
        "server_processes": len(proctree.tree(pid)),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("mode", choices=["echo", "fanout", "idle"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/ws/echo/")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--burst", type=int, default=20)
    p.add_argument("--latency-rounds", type=int, default=10)
    p.add_argument(
        "--quiet",
        type=float,
        default=20.0,
        help="fan-out: a round is stalled after this long without any delivery (s)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="fan-out: at the end, wait this long without progress before "
        "counting undelivered messages as lost (s)",
    )
    add_run_arguments(p, timeout_help="connect/handshake timeout (s)")
    return p.parse_args(argv)


def add_run_arguments(p: argparse.ArgumentParser, *, timeout_help: str) -> None:
    """The options every WebSocket load generator here takes from the harness: the connect
    timeout, the server to watch, the CPUs to pin to and the contention rules for windows."""
    p.add_argument("--timeout", type=float, default=15.0, help=timeout_help)
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--server-core", type=int, default=None)
    p.add_argument("--extra-windows", type=int, default=0)
    p.add_argument("--max-contention", type=float, default=15.0)


def start(args: argparse.Namespace) -> bool:
    """Refuse any target but loopback (False, with a one-line message) and pin to ``--core``."""
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("the load generator only targets the loopback interface", file=sys.stderr)
        return False
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if not start(args):
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    runner = {"echo": run_echo, "fanout": run_fanout, "idle": run_idle}[args.mode]
    result = uvloop.run(runner(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
