"""A throw-away 3-primary Redis Cluster on free loopback ports for workload D-scale.

No replicas: the benchmark measures the layer's fan-out across primaries, and replication would
only add CPU on the same pinned core.  (Failover is covered by the test suite, with replicas.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks import procs
from benchmarks.redis_server import command

PRIMARIES = 3


def available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def _cluster_port(taken: set[int]) -> int:
    """A free port whose cluster-bus twin (port + 10000) is below 65536 and free too."""
    for _ in range(200):
        port = procs.free_port()
        if port + 10000 < 65536 and port not in taken and procs.port_free(port + 10000):
            taken.add(port)
            return port
    raise RuntimeError("no free port pair for a cluster node")


@contextmanager
def running(log_dir: Path, core: int | None) -> Iterator[list[str]]:
    """Yield the nodes as ``redis+cluster://127.0.0.1:<port>`` URLs; always stopped."""
    taken: set[int] = set()
    ports = [_cluster_port(taken) for _ in range(PRIMARIES)]
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    with ExitStack() as stack:
        for port in ports:
            node_dir = log_dir / f"cluster-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            argv = [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--save", "",
                "--appendonly", "no",
            ]  # fmt: skip
            with (node_dir / "redis.log").open("wb") as log:
                proc = procs.spawn(argv, cwd=node_dir, env=env, log=log, core=core)
            stack.callback(procs.stop, proc)
            procs.wait_listening(proc, port, 10.0)
        done = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        if "[OK] All 16384 slots covered" not in done.stdout:
            raise RuntimeError("redis-cli --cluster create failed: " + done.stdout[-500:])
        deadline = time.monotonic() + 30.0
        # Created is not converged: every node must see all slots served before clients come.
        while not all(b"cluster_state:ok" in command(p, b"CLUSTER INFO\r\n", 4096) for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark cluster did not converge")
            time.sleep(0.05)  # another process's state; nothing to wait on
        yield [f"redis+cluster://127.0.0.1:{p}" for p in ports]


def flush(urls: list[str]) -> None:
    for url in urls:
        command(int(url.rsplit(":", 1)[1]), b"FLUSHALL\r\n")
