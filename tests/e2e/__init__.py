"""End-to-end helpers: run the chat example under ``python -m server`` and a real redis-server.

Processes write their output to a log file (never a pipe nobody reads, which would block them
once the pipe buffer fills) and every failure message includes the tail of that log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAT_DIR = REPO_ROOT / "examples" / "chat"
CHAT_APP = "chatsite.asgi:application"
HEALTH_PATH = "/healthz"

# Upper bound for a process to start listening; generous because 7 test runs share 2 cores.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def log_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    """Poll ``ready()`` until it holds, failing fast if ``proc`` exits.

    A process coming up on a port offers no event to wait on, so this is the one place that
    polls; the interval grows from 20 ms to 250 ms and the whole wait is bounded.
    """
    deadline = time.monotonic() + START_TIMEOUT
    delay = 0.02
    while True:
        if ready():
            return
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready after {START_TIMEOUT}s:\n{log_tail(log)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` and wait for the exit code; kill (and report) a process that hangs."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"pid {proc.pid} ignored signal {sig} for {STOP_TIMEOUT}s"
            ) from None
    return proc.returncode


def chat_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the example: its settings module, nothing inherited that changes it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHANNELS_SERVER_", "DJANGO_")) and k != "REDIS_URL"
    }
    env["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return log_tail(self.log)


@contextlib.contextmanager
def chat_server(
    tmp: Path,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> Iterator[RunningServer]:
    """Run ``python -m server`` on the chat example at a free port until the block ends.

    On exit the server gets SIGTERM and must stop cleanly (exit status 0).
    """
    port = free_port()
    log = tmp / f"server-{port}.log"
    command = [
        python, "-m", "server",
        "--app-dir", str(CHAT_DIR),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--health-check-path", HEALTH_PATH,
        *args,
        CHAT_APP,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=chat_env(env), stdout=out, stderr=subprocess.STDOUT
        )
    running = RunningServer(proc, port, log)
    workers = _worker_count(args)

    def ready() -> bool:
        # With --workers, one answering worker is not enough: the others may still be booting
        # (slow on a loaded machine) and every connection would land on the first one.
        return http_ok(running.base_url + HEALTH_PATH) and (
            workers == 0 or _ready_workers(log) >= workers
        )

    try:
        wait_until(ready, proc, log, "server")
        yield running
    finally:
        code = stop_process(proc)
    assert code == 0, f"server exited with {code} after SIGTERM:\n{running.log_tail()}"


def _worker_count(args: Sequence[str]) -> int:
    """The ``--workers N`` among the server's arguments (0 when there is no supervisor)."""
    for i, arg in enumerate(args):
        if arg == "--workers" and i + 1 < len(args):
            return int(args[i + 1])
        if arg.startswith("--workers="):
            return int(arg.partition("=")[2])
    return 0


def _ready_workers(log: Path) -> int:
    """How many workers the supervisor has reported listening ("Worker [pid] ready")."""
    text = log.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "Worker [" in line and "] ready" in line)


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    """A throw-away redis-server on 127.0.0.1 at a free port; yields its URL."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server not installed"
    port = free_port()
    data_dir = tmp / f"redis-{port}"
    data_dir.mkdir()
    log = data_dir / "redis.log"
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--save", "", "--appendonly", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _redis_pings(port), proc, log, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
