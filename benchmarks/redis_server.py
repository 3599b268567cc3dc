"""A throw-away ``redis-server`` on a free loopback port for the Redis fan-out workloads."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import procs


def available() -> bool:
    return shutil.which("redis-server") is not None


def command(port: int, request: bytes, size: int = 64) -> bytes:
    """One raw RESP command; the first ``size`` bytes of the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
        s.sendall(request)
        return s.recv(size)


@contextmanager
def running(log_dir: Path, core: int | None) -> Iterator[str]:
    """Yield ``redis://127.0.0.1:<port>/0``; persistence off; always stopped afterwards."""
    port = procs.free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    with (log_dir / "redis.log").open("wb") as log:
        env = {"PATH": os.environ.get("PATH", os.defpath)}
        proc = procs.spawn(argv, cwd=log_dir, env=env, log=log, core=core)
    try:
        procs.wait_listening(proc, port, 10.0)
        deadline = time.monotonic() + 10.0
        # Listening is not ready: redis answers -LOADING until the (empty) dataset is loaded.
        while command(port, b"PING\r\n") != b"+PONG\r\n":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        procs.stop(proc)


def flush(url: str) -> None:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    command(port, b"FLUSHALL\r\n")
