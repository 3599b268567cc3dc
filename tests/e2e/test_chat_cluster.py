"""The chat example with ``--workers 2`` on a real local Redis Cluster (3 primaries + 3
replicas): every message posted in a room reaches every socket of the room exactly once,
whichever worker holds the poster and the readers.

WebSocket clients are plain ``websockets`` connections (the browser path is covered by
test_browser_chat.py; what is under test here is the layer on the cluster)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.e2e import chat_server
from tests.support.redis_cluster import RedisCluster, redis_cluster

__all__ = ["redis_cluster"]

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(120)]

MAX_CLIENTS = 24  # bounded: stop connecting once both workers hold clients


async def _next(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
    return message


async def _chat(base_url: str) -> None:
    room = f"room-{uuid.uuid4().hex[:12]}"
    url = base_url.replace("http://", "ws://") + f"/ws/chat/{room}/"
    clients: list[Any] = []
    workers: list[int] = []
    try:
        while len(clients) < MAX_CLIENTS and (len(set(workers)) < 2 or len(clients) < 6):
            ws = await websockets.connect(url, origin=websockets.Origin(base_url))
            clients.append(ws)
            welcome = await _next(ws)
            assert welcome["type"] == "welcome"
            workers.append(welcome["worker"])
        assert len(set(workers)) == 2, f"all clients landed on one worker: {workers}"
        # Every client posts once; all posts are in flight together.
        texts = [f"from-{i}" for i in range(len(clients))]
        await asyncio.gather(
            *(ws.send(json.dumps({"message": t})) for ws, t in zip(clients, texts, strict=True))
        )
        for ws in clients:
            got = [(await _next(ws))["message"] for _ in texts]
            assert sorted(got) == sorted(texts)  # each exactly once
        # Nothing extra queued behind them: the next frame is a fresh marker.
        await clients[0].send(json.dumps({"message": "end"}))
        for ws in clients:
            assert await _next(ws) == {"type": "message", "message": "end"}
    finally:
        for ws in clients:
            await ws.close()


def test_chat_with_two_workers_on_a_redis_cluster(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    hosts = ",".join(f"redis+cluster://{h}:{p}" for h, p in redis_cluster.startup_nodes)
    with chat_server(tmp_path, args=["--workers", "2"], env={"REDIS_URL": hosts}) as server:
        asyncio.run(_chat(server.base_url))
