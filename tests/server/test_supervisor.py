"""``--workers N``: shared socket, restart on crash, rolling restart, recycling, clean stop."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.apps.proc import ServerProcess

pytestmark = pytest.mark.slow

APP = "tests.server.apps.basic:app"
STARTED = r"Started worker \[(\d+)\]"
READY = r"Worker \[(\d+)\] ready"


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def start(*extra: str, workers: int = 2, **kwargs: object) -> tuple[ServerProcess, str, set[int]]:
    proc = ServerProcess([APP, "--port", "0", "--workers", str(workers), *extra], **kwargs)  # type: ignore[arg-type]
    m = proc.wait_for(r"Supervisor listening on (http://\S+)")
    ready = {int(proc.wait_for(READY).group(1)) for _ in range(workers)}
    return proc, m.group(1), ready


def get_pid(base: str) -> int:
    # A new connection per request, so that any worker may accept it.
    with httpx.Client(headers={"connection": "close"}) as client:
        return int(client.get(base + "/pid").text)


def stop(proc: ServerProcess) -> None:
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit(30) == 0, proc.output


def test_both_workers_serve(pipe: tuple[int, int]) -> None:
    r, w = pipe
    proc, base, workers = start(env={"BLOCK_FD": str(r)}, pass_fds=[r])
    try:
        assert len(workers) == 2
        # /block freezes the event loop of the worker that accepted it, so the next
        # connection can only be accepted by the other worker.
        with httpx.Client(timeout=20) as blocked_client:
            import threading

            result: list[int] = []
            t = threading.Thread(
                target=lambda: result.append(int(blocked_client.get(base + "/block").text))
            )
            t.start()
            other = get_pid(base)
            os.write(w, b"x")
            t.join(20)
        assert result and result[0] != other
        assert {result[0], other} == workers
    finally:
        try:
            stop(proc)
        finally:
            proc.close()


def test_killed_worker_is_restarted() -> None:
    proc, base, workers = start()
    try:
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        proc.wait_for(rf"Worker \[{victim}\] died \(signal SIGKILL\); restarting")
        new = int(proc.wait_for(READY).group(1))
        assert new not in workers
        for _ in range(4):
            assert get_pid(base) in (workers - {victim}) | {new}
    finally:
        try:
            stop(proc)
        finally:
            proc.close()


def test_sighup_rolling_restart() -> None:
    proc, base, old = start()
    try:
        proc.signal(signal.SIGHUP)
        proc.wait_for("Rolling restart complete", timeout=30)
        text = proc.output
        new_ready = {int(p) for p in re.findall(READY, text)} - old
        stopped = {int(p) for p in re.findall(r"stopping old worker \[(\d+)\]", text)}
        assert len(new_ready) == 2
        assert stopped == old
        # Each old worker was only stopped after a replacement was ready.
        for pid in old:
            assert text.index(f"stopping old worker [{pid}]") > text.index(
                f"Worker [{min(new_ready)}] ready"
            )
        for pid in old:
            proc.wait_for(rf"Worker \[{pid}\] stopped", seen=True)
        for _ in range(4):
            assert get_pid(base) in new_ready
    finally:
        try:
            stop(proc)
        finally:
            proc.close()


def test_limit_max_requests_recycles_workers() -> None:
    proc, base, workers = start("--limit-max-requests", "2")
    try:
        seen: set[int] = set()
        for _ in range(4):  # 4 requests over 2 workers: at least one reaches its limit
            seen.add(get_pid(base))
        m = proc.wait_for(r"Worker \[(\d+)\] exited \(exit code 0\); starting a new one")
        assert int(m.group(1)) in workers
        new = int(proc.wait_for(READY).group(1))
        assert new not in workers
    finally:
        try:
            stop(proc)
        finally:
            proc.close()


def test_startup_failure_in_every_worker_stops_the_supervisor() -> None:
    proc = ServerProcess(["tests.server.apps.basic:startup_fails", "--port", "0", "--workers", "2"])
    try:
        assert proc.wait_exit(30) == 3
        assert "application startup failed: database unreachable" in proc.output
        assert "restarting" not in proc.output
    finally:
        proc.close()


def test_bad_app_path_with_workers_exits_2() -> None:
    proc = ServerProcess(["tests.server.apps.nope:app", "--port", "0", "--workers", "2"])
    try:
        assert proc.wait_exit(30) == 2
        assert "could not import module" in proc.output
    finally:
        proc.close()


def test_warns_about_in_memory_layer() -> None:
    # Decided by a worker once the app has configured Django (tests/e2e covers settings from
    # the environment and from asgi.py's setdefault); said once for all workers.
    proc = ServerProcess(["tests.server.apps.inmemory_django:application", "--port", "0",
                          "--workers", "2"])  # fmt: skip
    try:
        for _ in range(2):
            proc.wait_for(READY)
        lines = [line for line in proc.lines if "RedisChannelLayer" in line]
        assert len(lines) == 1
        assert "InMemoryChannelLayer" in lines[0]
    finally:
        try:
            stop(proc)
        finally:
            proc.close()


def test_second_signal_forwards_force(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    proc, base, _ = start(
        "--timeout-graceful-shutdown", "60", env={"BLOCK_FD": str(r)}, pass_fds=[r]
    )
    try:
        import socket

        host, port = base.rsplit("/", 1)[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
            assert b"begin" in sock.recv(4096)
            proc.signal(signal.SIGTERM)
            proc.wait_for("Stopped accepting; waiting")
            proc.signal(signal.SIGTERM)
            proc.wait_for("forcing workers to exit")
            assert proc.wait_exit(30) == 1
    finally:
        proc.close()


def test_crash_loop_backs_off() -> None:
    proc, base, _ = start()
    try:
        delays = []
        for _ in range(3):
            with contextlib.suppress(httpx.HTTPError), httpx.Client() as client:
                client.get(base + "/crash")
            m = proc.wait_for(r"died \(exit code 17\); restarting in ([\d.]+) s")
            delays.append(float(m.group(1)))
            proc.wait_for(READY)
        # First crash: replaced at once; quick repeated crashes: growing delays.
        assert delays[0] == 0.0
        assert 0 < delays[1] < delays[2]
    finally:
        try:
            stop(proc)
        finally:
            proc.close()


def test_workers_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "w.sock"
    proc = ServerProcess([APP, "--uds", str(path), "--workers", "2"])
    try:
        proc.wait_for(f"Supervisor listening on unix:{path}")
        for _ in range(2):
            proc.wait_for(READY)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
            assert client.get("http://x/u").text == "ok /u"
        stop(proc)
        assert not path.exists()
    finally:
        proc.close()
