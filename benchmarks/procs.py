"""Every process the harness starts goes through here, so that all of them are killed at the end,
even on an error or Ctrl-C (``kill_all`` runs from ``finally`` and from ``atexit``)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

_live: list[subprocess.Popen[bytes]] = []


def pinned(core: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child (and every thread/process it starts) to ``core``."""
    if core is None:
        return None

    def _pin() -> None:
        os.sched_setaffinity(0, {core})

    return _pin


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: IO[bytes],
    core: int | None,
) -> subprocess.Popen[bytes]:
    """Start a long-running child in its own session (so its whole tree can be signalled)."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=pinned(core),
    )
    _live.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    # Also reaps grandchildren that outlived their parent in the same group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    if proc in _live:
        _live.remove(proc)


def kill_all() -> None:
    for proc in list(_live):
        stop(proc, grace=2.0)


atexit.register(kill_all)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    """Return once 127.0.0.1:port accepts a TCP connection; raise if the child died first.

    Polling is unavoidable here: another process owns the socket and tells us nothing.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} during startup")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not listening on port {port} after {timeout:.0f}s")
        time.sleep(0.05)


def cpu_of_children() -> float:
    """CPU seconds of all reaped children; the delta around one ``subprocess.run`` is that
    child's CPU (servers are only reaped after their workload finished)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
