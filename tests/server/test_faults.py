"""Faults under load with ``--workers 2``: a rolling restart (SIGHUP) loses no HTTP request and
moves WebSockets to the new workers; a worker killed with SIGKILL is replaced while the other one
keeps serving.

The load is bounded (16 keep-alive connections on 127.0.0.1, a few thousand requests) and every
request is checked: see tests/support/load.py.  How the supervisor shares one listening socket
between workers (so a newcomer accepts before an old worker stops): server/supervisor.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.server.apps.proc import ServerProcess
from tests.support.load import HttpLoad
from tests.support.processes import READY, address, start_workers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

APP = "tests.server.apps.pid_echo:app"


async def wait_for(
    proc: ServerProcess, pattern: str, within: float = 20.0, *, seen: bool = False
) -> re.Match[str]:
    """``ServerProcess.wait_for`` without blocking the loop that runs the load."""
    return await asyncio.to_thread(proc.wait_for, pattern, within, seen=seen)


@contextlib.asynccontextmanager
async def supervisor(*extra: str) -> AsyncIterator[tuple[ServerProcess, int, set[int]]]:
    """``--workers 2`` on a free port; yields the process, the port and the worker pids."""
    proc, base, ready = await asyncio.to_thread(
        start_workers, APP, "--port", "0", "--no-access-log", *extra
    )
    try:
        yield proc, address(base)[1], ready
        proc.signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait_exit, 30) == 0, proc.output
    finally:
        proc.close()


@contextlib.asynccontextmanager
async def running(load: HttpLoad) -> AsyncIterator[HttpLoad]:
    task = asyncio.create_task(load.run())
    try:
        yield load
    finally:
        await load.stop()
        await task


async def test_rolling_restart_under_load_loses_no_request() -> None:
    async with supervisor() as (proc, port, old):
        load = HttpLoad("127.0.0.1", port, "/pid", connections=16)
        async with running(load):
            await load.wait_for_responses(300)
            proc.signal(signal.SIGHUP)
            await wait_for(proc, "Rolling restart complete", within=30)
            for pid in old:
                await wait_for(proc, rf"Worker \[{pid}\] stopped", seen=True)
            served_by_old = sum(load.bodies[str(pid).encode()] for pid in old)
            await load.wait_for_responses(300)
        assert load.failures == [], load.failures[:5]
        # Every connection started on an old worker and was ended by a response saying
        # "connection: close" (none by a reset or a silent close), then reopened on a new one.
        assert load.reconnects >= load.connections
        assert sum(load.bodies[str(pid).encode()] for pid in old) == served_by_old
        assert load.ok > served_by_old


async def test_rolling_restart_moves_websockets_to_new_workers() -> None:
    async with supervisor() as (proc, port, old):
        url = f"ws://127.0.0.1:{port}/"
        closes: list[int] = []
        refused: list[int] = []
        current: dict[int, int] = {}  # client -> pid of the worker it is connected to
        echoed: dict[int, int] = {}
        changed = asyncio.Event()

        async def until(predicate: Callable[[], bool]) -> None:
            async with asyncio.timeout(10):
                while not predicate():
                    assert not any(t.done() for t in tasks), [t.result() for t in tasks]
                    changed.clear()
                    await changed.wait()

        async def client(index: int) -> None:
            # Reconnects whenever the server closes with 1001 (going away), as a browser's
            # reconnecting WebSocket wrapper does, at any point of the connection.
            while True:
                try:
                    async with connect(url, open_timeout=10) as ws:
                        pid = int(await ws.recv())
                        await ws.send(f"hello {index}")
                        assert await ws.recv() == f"hello {index}"
                        current[index] = pid
                        echoed[index] = echoed.get(index, 0) + 1
                        changed.set()
                        await ws.recv()  # the app sends nothing more: only a close ends this
                except ConnectionClosed as exc:
                    assert exc.rcvd is not None, exc
                    closes.append(exc.rcvd.code)
                    if exc.rcvd.code != 1001:
                        return
                except InvalidStatus as exc:
                    # A handshake still in progress on an old worker when it stops is refused
                    # with 503 (RFC 6455 section 4.1: the client may try again).
                    assert exc.response.status_code == 503, exc
                    refused.append(index)

        tasks = [asyncio.create_task(client(i)) for i in range(6)]
        try:
            await until(lambda: len(current) == 6)
            assert set(current.values()) <= old
            proc.signal(signal.SIGHUP)
            await wait_for(proc, "Rolling restart complete", within=30)
            for pid in old:
                await wait_for(proc, rf"Worker \[{pid}\] stopped", seen=True)
            await until(lambda: not set(current.values()) & old)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert closes and set(closes) == {1001}
        assert all(count >= 2 for count in echoed.values())  # each client echoed again
        assert len(refused) <= len(closes)  # only clients caught reconnecting mid-stop


async def test_sigkill_worker_is_replaced_while_the_other_serves() -> None:
    async with supervisor() as (proc, port, workers):
        load = HttpLoad("127.0.0.1", port, "/pid", connections=16)
        async with running(load):
            await load.wait_for_responses(300)
            victim = max(workers, key=lambda pid: load.bodies[str(pid).encode()])
            (survivor,) = workers - {victim}
            os.kill(victim, signal.SIGKILL)
            await wait_for(proc, rf"Worker \[{victim}\] died \(signal SIGKILL\); restarting")
            assert await _grows(load, survivor)  # served on while the victim is replaced
            new = int((await wait_for(proc, READY)).group(1))
            assert new not in workers
            failed_at_kill = len(load.failures)
            await load.wait_for_responses(300)
        # Only requests in flight on the killed worker's own connections can fail (reset),
        # at most one per connection; nothing fails once the replacement is up.
        assert failed_at_kill <= load.connections
        assert all(f.startswith("request:") for f in load.failures), load.failures
        assert len(load.failures) == failed_at_kill
    about_victim = re.findall(rf"Worker \[{victim}\] (died|stopped|exited)", proc.output)
    assert about_victim == ["died"], proc.output
    assert "Traceback" not in proc.output


async def _grows(load: HttpLoad, pid: int) -> bool:
    before = load.bodies[str(pid).encode()]
    await load.wait_for_responses(50)
    return load.bodies[str(pid).encode()] > before
