"""End to end: ``python -m server --workers 2`` with a Redis channel layer.

WebSocket clients spread over both worker processes (each consumer reports its worker's pid);
they all join one group, and every broadcast reaches every client exactly once, whichever
worker the sender and the receivers live in.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.support.redis import RedisServer, redis_server, redis_server_factory

__all__ = ["redis_server", "redis_server_factory"]

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(90)]

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_CLIENTS = 40  # bounded: stop connecting once both workers have clients


async def _read_until(
    stream: asyncio.StreamReader, pattern: re.Pattern[str], log: list[str]
) -> re.Match[str]:
    while True:
        line = await stream.readline()
        if not line:
            raise AssertionError("server exited early:\n" + "".join(log))
        text = line.decode(errors="replace")
        log.append(text)
        match = pattern.search(text)
        if match:
            return match


async def _next_json(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
    return message


@pytest.mark.parametrize(
    "backend",
    [
        "channels.layers.redis.RedisChannelLayer",
        "channels.layers.redis_pubsub.RedisPubSubChannelLayer",
    ],
)
async def test_broadcast_reaches_every_client_once_across_workers(
    redis_server: RedisServer, backend: str
) -> None:
    env = {
        **os.environ,
        "CHANNELS_TEST_LAYER": backend,
        "PYTHONPATH": str(REPO_ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.channels.layers.multiworker_settings",
        "CHANNELS_TEST_REDIS_URL": redis_server.url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "tests.channels.layers.multiworker_asgi:application",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-level",
        "info",
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    log: list[str] = []
    clients: list[Any] = []
    drain: asyncio.Future[None] | None = None
    try:
        port = int(
            (
                await asyncio.wait_for(
                    _read_until(
                        proc.stderr, re.compile(r"listening on http://127\.0\.0\.1:(\d+)"), log
                    ),
                    30,
                )
            ).group(1)
        )
        for _ in range(2):
            await asyncio.wait_for(
                _read_until(proc.stderr, re.compile(r"Worker \[\d+\] ready"), log), 30
            )
        drain = asyncio.ensure_future(_drain(proc.stderr, log))

        pids: list[int] = []
        while len(clients) < MAX_CLIENTS and (len(set(pids)) < 2 or len(clients) < 6):
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/")
            clients.append(ws)
            hello = await _next_json(ws)
            assert hello["type"] == "hello"
            pids.append(hello["pid"])
        assert len(set(pids)) == 2, f"all {len(clients)} clients landed on one worker: {pids}"

        # Broadcasts sent from a client of each worker.
        senders = [clients[pids.index(pid)] for pid in sorted(set(pids))]
        expected: list[int] = []
        for n in range(4):
            await senders[n % 2].send(json.dumps({"n": n}))
            expected.append(n)
            # Wait for the sender's own copy so the next broadcast is ordered after this one.
            for ws in clients:
                message = await _next_json(ws)
                assert message["type"] == "broadcast"
                assert message["n"] == n
        # Exactly once: the next message everybody sees is a fresh marker, not a duplicate.
        await senders[0].send(json.dumps({"n": "end"}))
        for ws, pid in zip(clients, pids, strict=True):
            message = await _next_json(ws)
            assert message == {"type": "broadcast", "n": "end", "pid": pid}
    finally:
        if drain is not None:
            drain.cancel()
        for ws in clients:
            await ws.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _drain(stream: asyncio.StreamReader, log: list[str]) -> None:
    """Keep reading the server's stderr so its pipe never fills up."""
    while line := await stream.readline():
        log.append(line.decode(errors="replace"))
