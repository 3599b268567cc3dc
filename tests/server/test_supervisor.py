"""``--workers N``: shared socket, restart on crash, rolling restart, recycling, clean stop,
signals to the supervisor and its workers, and no worker outliving a killed supervisor."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.server.apps.proc import ServerProcess
from tests.support.processes import (
    READY,
    alive,
    get_pid,
    open_wait,
    start_workers,
    wait_until,
)

pytestmark = pytest.mark.slow

APP = "tests.server.apps.basic:app"
STARTED = r"Started worker \[(\d+)\]"


def start(*extra: str, workers: int = 2, **kwargs: object) -> tuple[ServerProcess, str, set[int]]:
    return start_workers(APP, "--port", "0", *extra, workers=workers, **kwargs)


def kill_the_supervisor(proc: ServerProcess, workers: set[int]) -> None:
    """SIGKILL the supervisor (no chance to clean up): every worker must still go."""
    proc.proc.kill()
    proc.proc.wait(10)
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 20), [
        pid for pid in workers if alive(pid)
    ]


def kill_leftovers(proc: ServerProcess, workers: set[int]) -> None:
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.close()


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
        with open_wait(base):
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


def test_sigkill_of_the_supervisor_leaves_no_workers() -> None:
    proc, _, workers = start()
    try:
        kill_the_supervisor(proc, workers)
    finally:
        kill_leftovers(proc, workers)


def test_sigterm_to_one_worker_replaces_only_that_worker() -> None:
    proc, base, workers = start()
    try:
        victim, other = sorted(workers)
        os.kill(victim, signal.SIGTERM)
        new = int(proc.wait_for(READY).group(1))
        assert new not in workers
        assert alive(other)
        seen = {get_pid(base) for _ in range(12)}
        assert victim not in seen
        assert seen <= {other, new}
        assert f"Worker [{other}] stopped" not in proc.output
        proc.signal(signal.SIGTERM)
        assert proc.wait_exit(30) == 0, proc.output
    finally:
        proc.close()


def test_two_workers_on_an_inherited_fd() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        fd = listener.fileno()
        proc, _, workers = start_workers(APP, "--fd", str(fd), pass_fds=[fd])
        try:
            for _ in range(4):
                assert get_pid(f"http://127.0.0.1:{port}") in workers
            proc.signal(signal.SIGTERM)
            assert proc.wait_exit(30) == 0, proc.output
        finally:
            proc.close()


def test_max_requests_rolling_replacement_refuses_nothing() -> None:
    proc, base, _ = start("--limit-max-requests", "15", "--limit-max-requests-jitter", "5")
    try:
        errors: list[str] = []
        pids: set[int] = set()
        for _ in range(120):  # bounded: about 4 generations of workers
            try:
                pids.add(get_pid(base))
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
        assert errors == []
        assert len(pids) > 2, "workers should have been recycled"
        # The same over one keep-alive client: the response that reaches a worker's limit
        # closes the connection, so the next request reconnects instead of racing a close.
        before = len(pids)
        with httpx.Client(timeout=10) as keep_alive:
            for _ in range(120):
                try:
                    pids.add(int(keep_alive.get(base + "/pid").text))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
        assert errors == []
        assert len(pids) > before
        proc.signal(signal.SIGTERM)
        assert proc.wait_exit(30) == 0, proc.output
    finally:
        proc.close()


def test_sighup_lets_the_in_flight_response_finish(pipe: tuple[int, int]) -> None:
    r, w = pipe
    proc, base, old = start(env={"BLOCK_FD": str(r)}, pass_fds=[r])
    try:
        with open_wait(base) as sock:
            data = b""
            proc.signal(signal.SIGHUP)
            proc.wait_for("Rolling restart complete", timeout=30)
            os.write(w, b"x")  # let the old worker finish its response
            while chunk := sock.recv(4096):
                data += chunk
        assert data.endswith(b"end\n\r\n0\r\n\r\n"), data  # chunked, complete
        for pid in old:
            proc.wait_for(rf"Worker \[{pid}\] stopped \(exit code 0\)", seen=True, timeout=30)
        proc.signal(signal.SIGTERM)
        assert proc.wait_exit(30) == 0, proc.output
    finally:
        proc.close()


def test_double_sigint_on_the_supervisor_is_quiet_and_non_zero(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    proc, base, _ = start(env={"BLOCK_FD": str(r)}, pass_fds=[r])
    try:
        with open_wait(base):
            proc.signal(signal.SIGINT)
            proc.wait_for("Stopped accepting; waiting")
            proc.signal(signal.SIGINT)
            assert proc.wait_exit(30) == 1
        assert "Traceback" not in proc.output
        assert "KeyboardInterrupt" not in proc.output
    finally:
        proc.close()


def test_the_supervisor_never_reads_django_settings(
    tmp_path: Path, pipe: tuple[int, int]
) -> None:
    # Settings are only looked at (for the in-memory layer warning) in a worker, once the app
    # has configured them itself: a settings module named in the environment that the app
    # never uses is not imported, so it can neither block the supervisor nor a worker's loop.
    (tmp_path / "slow_settings.py").write_text(
        "import os\n"
        "print('READING SETTINGS', flush=True)\n"
        "os.read(int(os.environ['BLOCK_FD']), 1)\n"
        "INSTALLED_APPS = ['channels']\n"
    )
    r, _ = pipe
    proc = ServerProcess(
        [APP, "--port", "0", "--workers", "2", "--app-dir", str(tmp_path)],
        env={"BLOCK_FD": str(r), "DJANGO_SETTINGS_MODULE": "slow_settings"},
        pass_fds=[r],
    )
    try:
        for _ in range(2):
            proc.wait_for(READY)
        proc.signal(signal.SIGINT)
        assert proc.wait_exit(20) == 0, proc.output
        assert "READING SETTINGS" not in proc.output
        assert "Traceback" not in proc.output
    finally:
        proc.close()


def test_sigkill_of_the_supervisor_during_worker_startup_leaves_no_workers() -> None:
    proc = ServerProcess(
        ["tests.server.apps.lifecycle:never_starts", "--port", "0", "--workers", "2"]
    )
    workers: set[int] = set()
    try:
        # The two kinds of lines interleave in any order: count both as they come.
        began = 0
        while len(workers) < 2 or began < 2:
            line = proc.wait_for(r"Started worker \[(\d+)\]|STARTUP BEGAN")
            if line.group(1):
                workers.add(int(line.group(1)))
            else:
                began += 1
        kill_the_supervisor(proc, workers)
    finally:
        kill_leftovers(proc, workers)
