"""Helpers for tests that drive ``python -m server`` (and its supervisor) as real processes.

:class:`~tests.server.apps.proc.ServerProcess` runs the process; these start workers, reach
them over raw sockets and watch processes that are not our children.  Every wait is bounded.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx

from tests.server.apps.proc import ServerProcess

READY = r"Worker \[(\d+)\] ready"


def start_workers(
    *args: str, workers: int = 2, **kwargs: object
) -> tuple[ServerProcess, str, set[int]]:
    """Start ``--workers N`` and wait until every worker is ready: (process, base URL, pids)."""
    proc = ServerProcess([*args, "--workers", str(workers)], **kwargs)  # type: ignore[arg-type]
    try:
        base = proc.wait_for(r"Supervisor listening on (\S+)").group(1)
        ready = {int(proc.wait_for(READY).group(1)) for _ in range(workers)}
    except BaseException:
        proc.close()  # the caller never gets it to close
        raise
    return proc, base, ready


def address(base: str) -> tuple[str, int]:
    """``http://host:port`` -> ``(host, port)``."""
    host, port = base.rsplit("/", 1)[1].rsplit(":", 1)
    return host, int(port)


def get_pid(base: str) -> int:
    """The pid of the worker that served ``GET /pid`` (apps/basic.py).

    A new connection per request, so that any worker may accept it.
    """
    with httpx.Client(headers={"connection": "close"}, timeout=10) as client:
        return int(client.get(base + "/pid").text)


def open_wait(base: str) -> socket.socket:
    """GET /wait on a raw socket and return once the first chunk arrived (apps/basic.py)."""
    sock = socket.create_connection(address(base), timeout=20)
    sock.sendall(b"GET /wait HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    received = b""
    while b"begin\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    return sock


def alive(pid: int) -> bool:
    """True unless ``pid`` is gone or a zombie (waiting to be reaped by init)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    # Polling /proc is the only way to observe a process that is not our child: there is no
    # event to await.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
