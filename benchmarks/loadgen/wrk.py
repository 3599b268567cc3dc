"""Run ``wrk`` (HTTP keep-alive load, written in C) and parse its report."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procs, proctree

# Lua scripts that shape the requests (workloads A-varied, A-close-10, A-close-11).
SCRIPTS = Path(__file__).parent / "lua"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass
class WrkResult:
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    loadgen_cpu_pct: float
    server_cpu_pct: float
    others_on_server_core_pct: float
    wall_s: float


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(output: str) -> tuple[int, float, float, float, int, int]:
    """(requests, req/s, p50 ms, p99 ms, non-2xx/3xx, socket errors) from wrk's output."""
    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if requests is None or rate is None:
        raise ValueError("wrk printed no result:\n" + output[-500:])
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return (
        int(requests.group(1)),
        float(rate.group(1)),
        _ms(p50.group(1)) if p50 else float("nan"),
        _ms(p99.group(1)) if p99 else float("nan"),
        int(non2xx.group(1)) if non2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
    )


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    port: int,
    path: str,
    *,
    seconds: int,
    connections: int,
    core: int | None,
    server_pid: int,
    server_core: int | None,
    script: str | None = None,
) -> WrkResult:
    """One fixed-length wrk run (one thread) against 127.0.0.1:port; ``script`` names a Lua
    file in ``SCRIPTS`` that writes the requests."""
    url = f"http://127.0.0.1:{port}{path}"
    cpu0 = procs.cpu_of_children()
    srv0 = proctree.cpu_seconds(server_pid)
    core0 = proctree.core_busy_seconds(server_core) if server_core is not None else 0.0
    t0 = time.perf_counter()
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, seconds)}s", "--latency"]
    if script is not None:
        argv += ["-s", str(SCRIPTS / script)]
    done = subprocess.run(
        [*argv, url],
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
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    requests, rate, p50, p99, non2xx, errors = parse(done.stdout)
    return WrkResult(
        requests=requests,
        rate=rate,
        p50_ms=p50,
        p99_ms=p99,
        non_2xx=non2xx,
        socket_errors=errors,
        loadgen_cpu_pct=100.0 * (procs.cpu_of_children() - cpu0) / wall,
        server_cpu_pct=100.0 * srv / wall,
        others_on_server_core_pct=others,
        wall_s=wall,
    )
