"""Review regressions and operator scenarios, with real processes, signals and sockets.

Every wait is bounded and driven by the child's output lines (never a bare sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.server.apps.proc import ServerProcess

pytestmark = pytest.mark.slow

BASIC = "tests.server.apps.basic:app"
WS = "tests.server.apps.misbehaving:echo_ws"
READY = r"Worker \[(\d+)\] ready"


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def start_workers(
    *args: str, workers: int = 2, **kw: object
) -> tuple[ServerProcess, str, set[int]]:
    proc = ServerProcess([*args, "--workers", str(workers)], **kw)  # type: ignore[arg-type]
    base = proc.wait_for(r"Supervisor listening on (\S+)").group(1)
    ready = {int(proc.wait_for(READY).group(1)) for _ in range(workers)}
    return proc, base, ready


def alive(pid: int) -> bool:
    """True unless ``pid`` is gone or a zombie (waiting to be reaped by init)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate: object, timeout: float) -> bool:
    # Polling /proc is the only way to observe a process that is not our child.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def get_pid(base: str) -> int:
    with httpx.Client(headers={"connection": "close"}, timeout=10) as client:
        return int(client.get(base + "/pid").text)


def test_zero_graceful_timeout_still_runs_lifespan_shutdown() -> None:
    proc = ServerProcess([BASIC, "--port", "0", "--timeout-graceful-shutdown", "0"])
    try:
        proc.wait_listening()
        proc.signal(signal.SIGTERM)
        proc.wait_for("LIFESPAN SHUTDOWN")
        proc.wait_for("Application shutdown complete")
        assert proc.wait_exit(20) == 0, proc.output
    finally:
        proc.close()


def test_sigterm_while_startup_never_answers() -> None:
    proc = ServerProcess(["tests.server.apps.misbehaving:never_starts", "--port", "0"])
    try:
        proc.wait_for("STARTUP BEGAN")
        proc.signal(signal.SIGTERM)
        proc.wait_for("startup interrupted")
        assert proc.wait_exit(20) == 0, proc.output
        assert "Listening on" not in proc.output
        assert "Traceback" not in proc.output
    finally:
        proc.close()


def test_sigterm_closes_every_websocket_with_1001_under_two_workers() -> None:
    proc, base, _ = start_workers(WS, "--port", "0", "--timeout-graceful-shutdown", "10")
    address = base.removeprefix("http://")

    async def scenario() -> tuple[list[int | None], set[str]]:
        clients: list[Any] = []
        pids: set[str] = set()
        # Which worker accepts is up to the kernel: connect until both have clients (bounded).
        while len(clients) < 8 or (len(pids) < 2 and len(clients) < 40):
            client = await websockets.connect(f"ws://{address}/")
            await client.send("pid?")
            pids.add(str(await client.recv()))
            clients.append(client)
        proc.signal(signal.SIGTERM)
        codes: list[int | None] = []
        for client in clients:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(client.recv(), 15)
            codes.append(info.value.rcvd.code if info.value.rcvd else None)
        return codes, pids

    try:
        codes, pids = asyncio.run(scenario())
        assert codes == [1001] * len(codes)
        assert len(pids) == 2, "both workers should have had clients"
        assert proc.wait_exit(30) == 0, proc.output
        assert proc.output.count("WS DISCONNECT 1001") == len(codes)
        assert "Traceback" not in proc.output
    finally:
        proc.close()


def test_sigkill_of_the_supervisor_leaves_no_workers() -> None:
    proc, _, workers = start_workers(BASIC, "--port", "0")
    try:
        proc.proc.kill()
        proc.proc.wait(10)
        assert wait_until(lambda: not any(alive(pid) for pid in workers), 20), [
            pid for pid in workers if alive(pid)
        ]
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.close()


def test_sigterm_to_one_worker_replaces_only_that_worker() -> None:
    proc, base, workers = start_workers(BASIC, "--port", "0")
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
        proc, _, workers = start_workers(BASIC, "--fd", str(fd), pass_fds=[fd])
        try:
            for _ in range(4):
                assert get_pid(f"http://127.0.0.1:{port}") in workers
            proc.signal(signal.SIGTERM)
            assert proc.wait_exit(30) == 0, proc.output
        finally:
            proc.close()


def test_max_requests_rolling_replacement_refuses_nothing() -> None:
    proc, base, _ = start_workers(
        BASIC, "--port", "0", "--limit-max-requests", "15", "--limit-max-requests-jitter", "5"
    )
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
    proc, base, old = start_workers(BASIC, "--port", "0", env={"BLOCK_FD": str(r)}, pass_fds=[r])
    try:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(b"GET /wait HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = b""
            while b"begin\n" not in data:
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk
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
    proc, base, _ = start_workers(BASIC, "--port", "0", env={"BLOCK_FD": str(r)}, pass_fds=[r])
    try:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
            assert b"begin" in sock.recv(4096)
            proc.signal(signal.SIGINT)
            proc.wait_for("Stopped accepting; waiting")
            proc.signal(signal.SIGINT)
            assert proc.wait_exit(30) == 1
        assert "Traceback" not in proc.output
        assert "KeyboardInterrupt" not in proc.output
    finally:
        proc.close()


def test_second_signal_during_a_hanging_lifespan_shutdown_forces_exit() -> None:
    proc = ServerProcess(
        [
            "tests.server.apps.misbehaving:shutdown_hangs",
            "--port",
            "0",
            "--timeout-graceful-shutdown",
            "60",
        ]
    )
    try:
        proc.wait_listening()
        proc.signal(signal.SIGTERM)
        proc.wait_for("SHUTDOWN HANGS")
        proc.signal(signal.SIGTERM)
        # Well within the 60 s the app would otherwise be given, even though the app ignores
        # its first cancellation.
        assert proc.wait_exit(15) == 1, proc.output
        assert "Traceback" not in proc.output
    finally:
        proc.close()


def test_sigint_while_importing_the_app_is_quiet(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    (tmp_path / "slowmod.py").write_text(
        "import os, time\n"
        "print('IMPORTING', flush=True)\n"
        "fd = int(os.environ['BLOCK_FD'])\n"
        "os.read(fd, 1)\n"
        "from tests.server.apps.basic import app\n"
    )
    r, w = os.pipe()
    try:
        proc = ServerProcess(
            ["slowmod:app", "--app-dir", str(tmp_path), "--port", "0"],
            env={"BLOCK_FD": str(r)},
            pass_fds=[r],
        )
        try:
            proc.wait_for("IMPORTING")
            proc.signal(signal.SIGINT)
            os.write(w, b"x")
            assert proc.wait_exit(20) == 1, proc.output
            assert "Traceback" not in proc.output
            assert "Application startup complete" not in proc.output
            assert "Listening on" not in proc.output
        finally:
            proc.close()
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_lifespan_shutdown_is_a_non_zero_exit(workers: int) -> None:
    args = [
        "tests.server.apps.misbehaving:shutdown_fails",
        "--port",
        "0",
        "--workers",
        str(workers),
    ]
    proc = ServerProcess(args)
    try:
        proc.wait_for("Supervisor listening" if workers > 1 else "Listening on")
        for _ in range(workers if workers > 1 else 0):
            proc.wait_for(READY)
        proc.signal(signal.SIGTERM)
        # Same exit status with or without the supervisor.
        assert proc.wait_exit(30) == 1, proc.output
        assert "could not flush the queue" in proc.output
    finally:
        proc.close()


def test_client_misbehaviour_leaves_no_traceback(tmp_path: object) -> None:
    import pathlib
    import ssl

    from tests.support.certs import make_self_signed

    assert isinstance(tmp_path, pathlib.Path)
    cert, key = make_self_signed(tmp_path)
    plain = ServerProcess([WS, "--port", "0"])
    tls = ServerProcess([WS, "--port", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)])
    try:
        plain_addr = address(plain.wait_listening())
        tls_addr = address(tls.wait_listening())

        def send_and_reset(addr: tuple[str, int], data: bytes, *, wrap: bool = False) -> None:
            sock = socket.create_connection(addr, timeout=10)
            if wrap:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(sock)
            sock.sendall(data)
            # RST instead of FIN: the rudest way a client can leave.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.close()

        upgrade = (
            b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        send_and_reset(plain_addr, b"\x00\xff garbage \r\n\r\n")
        send_and_reset(plain_addr, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\nab")
        send_and_reset(plain_addr, upgrade + b"\x81\xfe\xff")  # truncated frame, then reset
        send_and_reset(tls_addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # plain text to TLS
        send_and_reset(tls_addr, b"\x16\x03\x01\x00\x05hello")  # broken ClientHello
        send_and_reset(tls_addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", wrap=True)
        # A last good request on each: the servers are still healthy after all that.
        assert httpx.get(f"http://{plain_addr[0]}:{plain_addr[1]}/").status_code == 200
        assert httpx.get(f"https://{tls_addr[0]}:{tls_addr[1]}/", verify=False).status_code == 200
        for proc in (plain, tls):
            proc.signal(signal.SIGTERM)
            assert proc.wait_exit(30) == 0, proc.output
            assert "Traceback" not in proc.output
            assert " ERROR " not in proc.output
    finally:
        plain.close()
        tls.close()


def address(base: str) -> tuple[str, int]:
    host, port = base.rsplit("/", 1)[1].rsplit(":", 1)
    return host, int(port)


def test_the_supervisor_never_reads_django_settings(tmp_path: object) -> None:
    # Settings are only looked at (for the in-memory layer warning) in a worker, once the app
    # has configured them itself: a settings module named in the environment that the app
    # never uses is not imported, so it can neither block the supervisor nor a worker's loop.
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    (tmp_path / "slow_settings.py").write_text(
        "import os\n"
        "print('READING SETTINGS', flush=True)\n"
        "os.read(int(os.environ['BLOCK_FD']), 1)\n"
        "INSTALLED_APPS = ['channels']\n"
    )
    r, w = os.pipe()
    try:
        proc = ServerProcess(
            [BASIC, "--port", "0", "--workers", "2", "--app-dir", str(tmp_path)],
            env={"BLOCK_FD": str(r), "DJANGO_SETTINGS_MODULE": "slow_settings"},
            pass_fds=[r],
        )
        try:
            for _ in range(2):
                proc.wait_for(r"Worker \[\d+\] ready")
            proc.signal(signal.SIGINT)
            assert proc.wait_exit(20) == 0, proc.output
            assert "READING SETTINGS" not in proc.output
            assert "Traceback" not in proc.output
        finally:
            proc.close()
    finally:
        os.close(r)
        os.close(w)


def test_limit_max_requests_is_not_overshot_by_a_busy_worker() -> None:
    # One keep-alive client hammering a single worker: the limit must hold per request, not
    # "whenever a periodic check next looks" (which let a busy worker serve thousands more).
    proc = ServerProcess([BASIC, "--port", "0", "--limit-max-requests", "50", "--no-access-log"])
    try:
        base = proc.wait_listening()
        served = 0
        with httpx.Client(timeout=10) as client:
            for _ in range(2000):  # bounded; far beyond the limit
                try:
                    client.get(base + "/pid")
                except httpx.HTTPError:
                    break  # the worker went away, as it should
                served += 1
        assert proc.wait_exit(30) == 0, proc.output
        match = proc.wait_for(r"Served (\d+) requests \(limit 50\)", seen=True)
        assert int(match.group(1)) == 50
        assert 50 <= served <= 51, served  # at most the request racing the close
    finally:
        proc.close()


def test_sigkill_of_the_supervisor_during_worker_startup_leaves_no_workers() -> None:
    proc = ServerProcess(
        ["tests.server.apps.misbehaving:never_starts", "--port", "0", "--workers", "2"]
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
        proc.proc.kill()
        proc.proc.wait(10)
        assert wait_until(lambda: not any(alive(pid) for pid in workers), 20), [
            pid for pid in workers if alive(pid)
        ]
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.close()
