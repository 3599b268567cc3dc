"""One run of a load generator written in C (``wrk``, ``h2load``): pinned to its core, timed,
with the CPU the load generator, the server and everything else on the server's core used."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass

from benchmarks import procs, proctree

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def duration_ms(text: str, tool: str) -> float:
    """A duration as wrk and h2load print it (``812.00us``, ``1.20ms``, ``2.01s``, ``1.00m``)."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"unexpected {tool} time {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class Usage:
    """CPU over one run, in percent of one core (100: that side was saturated)."""

    loadgen_cpu_pct: float
    server_cpu_pct: float
    # Share of the server's core used by other processes during the run.
    others_on_server_core_pct: float
    wall_s: float


@dataclass
class LoadResult(Usage):
    """What every load run reports; each tool's result adds its own latency fields."""

    requests: int
    rate: float
    non_2xx: int


def run_pinned(
    argv: list[str],
    *,
    seconds: int,
    core: int | None,
    server_pid: int,
    server_core: int | None,
) -> tuple[str, Usage]:
    """Run ``argv`` (a fixed-length load run) on ``core``; its standard output and the CPU
    used meanwhile.  Raises ``RuntimeError`` when the tool fails."""
    cpu0 = procs.cpu_of_children()
    srv0 = proctree.cpu_seconds(server_pid)
    core0 = proctree.core_busy_seconds(server_core) if server_core is not None else 0.0
    t0 = time.perf_counter()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
        preexec_fn=procs.pinned(core),
    )
    wall = time.perf_counter() - t0
    srv = proctree.cpu_seconds(server_pid) - srv0
    others = float("nan")
    if server_core is not None:
        busy = proctree.core_busy_seconds(server_core) - core0
        others = max(0.0, 100.0 * (busy - srv) / wall)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    usage = Usage(
        loadgen_cpu_pct=100.0 * (procs.cpu_of_children() - cpu0) / wall,
        server_cpu_pct=100.0 * srv / wall,
        others_on_server_core_pct=others,
        wall_s=wall,
    )
    return done.stdout, usage
