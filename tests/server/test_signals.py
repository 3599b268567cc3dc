"""Signals and stopping: SIGTERM/SIGINT at every stage of a server's life (importing, lifespan
startup, serving WebSockets, lifespan shutdown), a second signal, and the exit status.

Real processes; every wait is bounded and driven by the child's output lines (never a bare
sleep).  The supervisor's own signal handling is in ``test_supervisor.py``.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
from typing import Any

import pytest
import websockets

from tests.server.apps.proc import ServerProcess
from tests.support.processes import READY, start_workers

pytestmark = pytest.mark.slow

BASIC = "tests.server.apps.basic:app"
WS = "tests.server.apps.lifecycle:echo_ws"


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
