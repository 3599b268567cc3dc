"""Redis down or not answering: sends fail within a bound with a clear error, a waiting
``receive`` keeps waiting and retries with backoff.  (A restart in the middle of traffic is in
``test_redis_faults.py``.)"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]


@pytest.fixture
def stopped_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A Redis that accepts connections but never answers (SIGSTOP), resumed afterwards."""
    assert redis_server.process is not None
    pid = redis_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield redis_server
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_unresponsive_redis_gives_a_bounded_clear_error(
    stopped_redis: RedisServer, kind: str
) -> None:
    layer: Any = (
        RedisChannelLayer(hosts=[stopped_redis.url])
        if kind == "redis"
        else RedisPubSubChannelLayer(hosts=[stopped_redis.url])
    )
    layer.command_timeout = 1.0
    try:
        # The outer timeout only keeps a regression from hanging the suite.
        async with asyncio.timeout(30):
            with pytest.raises(RedisTimeoutError, match="did not answer"):
                await layer.send("nowhere", {"type": "x"})
            with pytest.raises(RedisTimeoutError, match="did not answer"):
                await layer.group_send("nowhere", {"type": "x"})
            if kind == "pubsub":
                with pytest.raises(RedisTimeoutError, match="did not answer"):
                    await layer.new_channel()
            else:
                with pytest.raises(RedisTimeoutError, match="did not answer"):
                    await layer.group_add("nowhere", "nowhere.sink")
    finally:
        os.kill(stopped_redis.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
        await layer.close()


class SlammingServer:
    """Accepts TCP connections and closes them at once, counting the attempts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@pytest.mark.parametrize("target", ["named", "process-local", "pubsub"])
async def test_receive_while_redis_is_down_retries_without_busy_looping(
    caplog: pytest.LogCaptureFixture, target: str
) -> None:
    """A consumer waiting while Redis is down keeps waiting (no exception) and retries with
    backoff: a handful of connection attempts per second, not thousands."""
    caplog.set_level("ERROR", logger="channels.layers")  # the retry warnings are expected
    down = SlammingServer()
    layer: Any = (
        RedisPubSubChannelLayer(hosts=[("127.0.0.1", down.port)])
        if target == "pubsub"
        else RedisChannelLayer(hosts=[("127.0.0.1", down.port)])
    )
    try:
        if target == "process-local":
            channel = f"{layer.local_name}consumer.1"
        elif target == "pubsub":
            channel = "pubsub.consumer"
        else:
            channel = "named.consumer"
        waiting = asyncio.ensure_future(layer.receive(channel))
        window = 3.0
        await asyncio.sleep(window)  # the observation window itself (no event to await)
        assert not waiting.done(), waiting.exception() if waiting.done() else None
        # Backoff is capped at 0.5 s between rounds of at most 6 tries: far below 100 in 3 s.
        assert 1 <= down.accepted < 100, down.accepted
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await layer.close()
        down.close()


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_send_while_redis_is_down_fails_fast_and_clearly(kind: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hosts = [("127.0.0.1", port)]
    layer: Any = (
        RedisChannelLayer(hosts=hosts) if kind == "redis" else RedisPubSubChannelLayer(hosts=hosts)
    )
    try:
        async with asyncio.timeout(30):  # only guards against a regression hanging the suite
            for call, target in ((layer.send, "down.sink"), (layer.group_send, "down-group")):
                with pytest.raises(RedisConnectionError, match=f"127.0.0.1:{port}"):
                    await call(target, {"type": "lost"})
    finally:
        await layer.close()
