"""Run ``h2load`` (nghttp2's HTTP/2 load generator, written in C) and parse its report.

HTTP/2 over cleartext with prior knowledge (h2c): every server under test gets the same bytes,
with no TLS cost in the figure.  ``-m`` streams in flight per connection.  Workload H2-TLS runs
it over ``https`` (h2 by ALPN) for the servers that serve HTTP/2 only with TLS (Daphne).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass

from benchmarks.loadgen.external import LoadResult, duration_ms, run_pinned

# Streams in flight per connection (h2load -m): what browsers do with a page's resources.
STREAMS = 10


@dataclass
class H2loadResult(LoadResult):
    mean_ms: float
    max_ms: float
    failed: int
    errored: int
    protocol: str


def _ms(text: str) -> float:
    return duration_ms(text, "h2load")


def parse(output: str) -> tuple[int, float, float, float, int, int, int, str]:
    """(succeeded, req/s, mean ms, max ms, failed, errored, non-2xx, protocol) from h2load."""
    finished = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output)
    counts = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored",
        output,
    )
    if finished is None or counts is None:
        raise ValueError("h2load printed no result:\n" + output[-500:])
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    times = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", output)
    protocol = re.search(r"Application protocol: (\S+)", output)
    return (
        int(counts.group(1)),
        float(finished.group(1)),
        _ms(times.group(3)) if times else float("nan"),
        _ms(times.group(2)) if times else float("nan"),
        int(counts.group(2)),
        int(counts.group(3)),
        sum(int(g) for g in codes.groups()[1:]) if codes else 0,
        protocol.group(1) if protocol else "",
    )


def available() -> bool:
    return shutil.which("h2load") is not None


def run(
    port: int,
    path: str,
    *,
    seconds: int,
    connections: int,
    core: int | None,
    server_pid: int,
    server_core: int | None,
    scheme: str = "http",
) -> H2loadResult:
    """One fixed-length h2load run (one thread) against 127.0.0.1:port over h2c (``http``)
    or h2 over TLS (``https``; h2load does not check the certificate)."""
    url = f"{scheme}://127.0.0.1:{port}{path}"
    argv = ["h2load", "-t1", f"-c{connections}", f"-m{STREAMS}", f"-D{max(1, seconds)}", url]
    output, usage = run_pinned(
        argv, seconds=seconds, core=core, server_pid=server_pid, server_core=server_core
    )
    requests, rate, mean, worst, failed, errored, non2xx, protocol = parse(output)
    return H2loadResult(
        requests=requests,
        rate=rate,
        mean_ms=mean,
        max_ms=worst,
        failed=failed,
        errored=errored,
        non_2xx=non2xx,
        protocol=protocol,
        **asdict(usage),
    )
