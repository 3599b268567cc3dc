"""Signals and stopping one server process: SIGTERM/SIGINT at every stage of its life
(importing, lifespan startup, serving, lifespan shutdown), the in-flight response finishing,
``--timeout-graceful-shutdown``, WebSockets closed with 1001, a second signal forcing the exit,
and the exit status.

Real processes; every wait is bounded and driven by the child's output lines (never a bare
sleep).  The supervisor's own signal handling is in ``test_supervisor.py``.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
from typing import Any

import httpx
import pytest
import websockets

from tests.server.apps.proc import ServerProcess
from tests.support.processes import READY, address, open_wait, start_workers

pytestmark = pytest.mark.slow

BASIC = "tests.server.apps.basic:app"
WS = "tests.server.apps.lifecycle:echo_ws"


def read_rest(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_sigint_is_graceful_too() -> None:
    proc = ServerProcess([BASIC, "--port", "0", "--lifespan", "off"])
    try:
        base = proc.wait_listening()
        assert httpx.get(base + "/x").status_code == 200
        proc.signal(signal.SIGINT)
        assert proc.wait_exit() == 0
        assert "Traceback" not in proc.output
    finally:
        proc.close()


def test_sigterm_lets_the_in_flight_response_finish(pipe: tuple[int, int]) -> None:
    r, w = pipe
    proc = ServerProcess([BASIC, "--port", "0"], env={"BLOCK_FD": str(r)}, pass_fds=[r])
    try:
        base = proc.wait_listening()
        with open_wait(base) as sock:
            proc.signal(signal.SIGTERM)
            proc.wait_for("Stopped accepting; waiting")
            # The listener is closed while the response is still in flight.
            with pytest.raises(OSError):
                socket.create_connection(address(base), timeout=5).close()
            assert proc.proc.poll() is None
            os.write(w, b"x")  # let the app finish its response
            rest = read_rest(sock)
        assert b"end\n" in rest
        assert rest.endswith(b"0\r\n\r\n")  # the chunked body was terminated properly
        assert proc.wait_exit() == 0
        assert "LIFESPAN SHUTDOWN" in proc.output
    finally:
        proc.close()


def test_second_signal_forces_exit(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    proc = ServerProcess(
        [BASIC, "--port", "0", "--timeout-graceful-shutdown", "60"],
        env={"BLOCK_FD": str(r)},
        pass_fds=[r],
    )
    try:
        base = proc.wait_listening()
        with open_wait(base) as sock:
            proc.signal(signal.SIGTERM)
            proc.wait_for("shutting down gracefully")
            proc.signal(signal.SIGTERM)
            proc.wait_for("forcing exit")
            # Far sooner than the 60 s grace period; the response is cut short.
            assert proc.wait_exit(timeout=20) == 1
            assert b"0\r\n\r\n" not in read_rest(sock)
    finally:
        proc.close()


def test_a_signal_during_a_self_initiated_stop_is_the_first_not_the_second(
    pipe: tuple[int, int],
) -> None:
    """A worker already stopping on its own (--limit-max-requests) that then gets the
    supervisor's SIGTERM finishes gracefully: only a second *signal* forces the exit."""
    r, w = pipe
    proc = ServerProcess(
        [BASIC, "--port", "0", "--limit-max-requests", "1"],
        env={"BLOCK_FD": str(r)},
        pass_fds=[r],
    )
    try:
        base = proc.wait_listening()
        with open_wait(base) as sock:
            proc.wait_for(r"Served 1 requests \(limit 1\)")
            proc.signal(signal.SIGTERM)
            proc.wait_for("shutting down gracefully")
            os.write(w, b"x")  # let the app finish its response
            rest = read_rest(sock)
        assert rest.endswith(b"0\r\n\r\n")  # the in-flight response was not cut short
        assert proc.wait_exit() == 0
        assert "forcing exit" not in proc.output
    finally:
        proc.close()


def test_graceful_timeout_expires(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    proc = ServerProcess(
        [BASIC, "--port", "0", "--timeout-graceful-shutdown", "0.5"],
        env={"BLOCK_FD": str(r)},
        pass_fds=[r],
    )
    try:
        base = proc.wait_listening()
        with open_wait(base):
            proc.signal(signal.SIGTERM)
            proc.wait_for("Closing 1 connection")
            assert proc.wait_exit() == 0
    finally:
        proc.close()


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
    proc = ServerProcess(["tests.server.apps.lifecycle:never_starts", "--port", "0"])
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


def test_second_signal_during_a_hanging_lifespan_shutdown_forces_exit() -> None:
    proc = ServerProcess(
        [
            "tests.server.apps.lifecycle:shutdown_hangs",
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


def test_sigint_while_importing_the_app_is_quiet(
    tmp_path: pathlib.Path, pipe: tuple[int, int]
) -> None:
    (tmp_path / "slowmod.py").write_text(
        "import os, time\n"
        "print('IMPORTING', flush=True)\n"
        "fd = int(os.environ['BLOCK_FD'])\n"
        "os.read(fd, 1)\n"
        "from tests.server.apps.basic import app\n"
    )
    r, w = pipe
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


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_lifespan_shutdown_is_a_non_zero_exit(workers: int) -> None:
    args = ["tests.server.apps.lifecycle:shutdown_fails", "--port", "0", "--workers", str(workers)]
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
