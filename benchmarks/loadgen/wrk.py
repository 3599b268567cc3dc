"""Run ``wrk`` (HTTP keep-alive load, written in C) and parse its report."""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.loadgen.external import LoadResult, duration_ms, run_pinned

# Lua scripts that shape the requests (workloads A-varied, A-close-10, A-close-11).
SCRIPTS = Path(__file__).parent / "lua"


@dataclass
class WrkResult(LoadResult):
    p50_ms: float
    p99_ms: float
    socket_errors: int


def _ms(text: str) -> float:
    return duration_ms(text, "wrk latency")


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
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, seconds)}s", "--latency"]
    if script is not None:
        argv += ["-s", str(SCRIPTS / script)]
    output, usage = run_pinned(
        [*argv, url], seconds=seconds, core=core, server_pid=server_pid, server_core=server_core
    )
    requests, rate, p50, p99, non2xx, errors = parse(output)
    return WrkResult(
        requests=requests,
        rate=rate,
        p50_ms=p50,
        p99_ms=p99,
        non_2xx=non2xx,
        socket_errors=errors,
        **asdict(usage),
    )
