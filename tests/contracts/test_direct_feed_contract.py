"""Every implementation of the direct feed (docs/direct-feed.md) through the same cases.

Each implementation is wrapped in a ``Feed``: the source under test (something with
``arm(fut)``), a way to make it produce message ``i`` the way it does in production (bytes into
the protocol's ``data_received``, a layer ``send``, ...) and a way to read the payload back.
The cases are the contract's rules: resolve now or later; a done future is never touched and
its message is kept; per-source order; no message lost or delivered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from channels.layers import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from channels.utils import Armable, ArmableLayer, PumpedSource, make_source
from channels.worker import _Inbox
from server.config import Config
from server.protocols.http import HttpProtocol
from server.protocols.websocket import WebSocketReceive
from server.state import ServerState
from tests.support.fakes import FakeTransport
from tests.support.redis import RedisServer, redis_server, redis_server_factory
from tests.support.redis_cluster import RedisCluster, shared_redis_cluster

__all__ = ["redis_server", "redis_server_factory", "shared_redis_cluster"]

# Bound on any single wait in these cases: generous for a loaded machine, never slept.
WAIT = 10.0


@dataclass
class Feed:
    source: Any
    produce: Callable[[int], Awaitable[None]]
    # Payloads end with "," so that sources whose messages coalesce (an HTTP body arrives as
    # whatever chunks are buffered) are checked by the same cases.
    payload: Callable[[Any], str]
    cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class _Connection:
    """A server protocol on a fake transport whose app hands out its ``receive`` (``got``)
    and then waits until ``close``."""

    def __init__(self, protocol: Callable[..., Any]) -> None:
        loop = asyncio.get_running_loop()
        self.got: asyncio.Future[Any] = loop.create_future()
        self.done = asyncio.Event()
        config = Config(app=self.app, date_header=False, server_header=False)
        self.state = ServerState()
        self.proto = protocol(config, self.app, self.state, loop)
        self.proto.connection_made(FakeTransport(self.proto))

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        self.got.set_result(receive)
        await self.done.wait()

    async def close(self) -> None:
        self.done.set()
        self.proto.connection_lost(None)
        while self.state.tasks:
            await asyncio.wait(list(self.state.tasks))


async def _http_request_cycle() -> Feed:
    conn = _Connection(HttpProtocol)
    proto = conn.proto
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
    receive = await asyncio.wait_for(conn.got, WAIT)

    async def produce(i: int) -> None:
        proto.data_received(str(i).encode() + b",")

    return Feed(receive, produce, lambda m: m["body"].decode(), cleanup=[conn.close])


async def _h2_stream() -> Feed:
    """An HTTP/2 request stream's ``receive``: body DATA frames from an h2 client."""
    import h2.config
    import h2.connection

    from server.protocols.h2 import H2Protocol

    conn = _Connection(H2Protocol)
    proto = conn.proto
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    fields = [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"t")]
    client.send_headers(1, fields)
    proto.data_received(client.data_to_send())
    receive = await asyncio.wait_for(conn.got, WAIT)

    async def produce(i: int) -> None:
        client.send_data(1, str(i).encode() + b",")
        proto.data_received(client.data_to_send())

    return Feed(receive, produce, lambda m: m["body"].decode(), cleanup=[conn.close])


async def _websocket_receive() -> Feed:
    receive = WebSocketReceive(asyncio.get_running_loop(), lambda: None)

    async def produce(i: int) -> None:
        text = f"{i},"
        receive.push({"type": "websocket.receive", "text": text}, len(text))

    return Feed(receive, produce, lambda m: m["text"])


async def _worker_inbox() -> Feed:
    inbox = _Inbox()

    async def produce(i: int) -> None:
        inbox.put({"type": "x", "text": f"{i},"})

    return Feed(inbox, produce, lambda m: m["text"])


async def _pumped_source() -> Feed:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    source = PumpedSource(queue.get)

    async def produce(i: int) -> None:
        queue.put_nowait({"type": "x", "text": f"{i},"})

    return Feed(source, produce, lambda m: m["text"], cleanup=[source.close])


async def _layer_feed(layer: Any) -> Feed:
    assert isinstance(layer, ArmableLayer)
    channel = await layer.new_channel()
    source = make_source(layer, channel)

    async def produce(i: int) -> None:
        await layer.send(channel, {"type": "x", "text": f"{i},"})

    async def close() -> None:
        await source.close()
        await layer.flush()
        await layer.close()

    return Feed(source, produce, lambda m: m["text"], cleanup=[close])


IMPLEMENTATIONS = [
    "http-request-cycle",
    "h2-stream",
    "websocket-receive",
    "worker-inbox",
    "pumped-source",
    "in-memory-layer",
    pytest.param("redis-layer", marks=pytest.mark.redis),
    pytest.param("redis-pubsub-layer", marks=pytest.mark.redis),
    # The same layers on a Redis Cluster (3 primaries + 3 replicas, one per session).
    pytest.param("redis-layer-cluster", marks=pytest.mark.redis),
    pytest.param("redis-pubsub-layer-cluster", marks=pytest.mark.redis),
]


@pytest.fixture(params=IMPLEMENTATIONS)
async def feed(request: pytest.FixtureRequest) -> AsyncIterator[Feed]:
    kind = request.param
    if kind == "http-request-cycle":
        made = await _http_request_cycle()
    elif kind == "h2-stream":
        made = await _h2_stream()
    elif kind == "websocket-receive":
        made = await _websocket_receive()
    elif kind == "worker-inbox":
        made = await _worker_inbox()
    elif kind == "pumped-source":
        made = await _pumped_source()
    elif kind == "in-memory-layer":
        made = await _layer_feed(InMemoryChannelLayer())
    else:
        if kind.endswith("-cluster"):
            cluster: RedisCluster = request.getfixturevalue("shared_redis_cluster")
            hosts = [f"redis+cluster://{h}:{p}" for h, p in cluster.startup_nodes]
        else:
            server: RedisServer = request.getfixturevalue("redis_server")
            hosts = [server.url]
        cls = RedisChannelLayer if kind.startswith("redis-layer") else RedisPubSubChannelLayer
        made = await _layer_feed(cls(hosts=hosts))
    yield made
    for step in made.cleanup:
        await step()


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def _collect(feed: Feed, count: int) -> str:
    """Arm fresh futures until the payloads of ``count`` produced messages are all in."""
    text = ""
    while text.count(",") < count:
        fut = _future()
        feed.source.arm(fut)
        text += feed.payload(await asyncio.wait_for(fut, WAIT))
    return text


def test_every_source_declares_the_contract_type(feed: Feed) -> None:
    assert isinstance(feed.source, Armable)


async def test_a_held_message_resolves_the_future(feed: Feed) -> None:
    await feed.produce(1)
    assert await _collect(feed, 1) == "1,"


async def test_an_armed_future_is_resolved_when_the_message_comes(feed: Feed) -> None:
    fut = _future()
    feed.source.arm(fut)
    await asyncio.sleep(0)  # let a source that arms through a task (pub/sub) get there
    assert not fut.done()
    await feed.produce(7)
    assert feed.payload(await asyncio.wait_for(fut, WAIT)) == "7,"


async def test_a_cancelled_future_is_left_alone_and_its_message_kept(feed: Feed) -> None:
    first = _future()
    feed.source.arm(first)
    first.cancel()
    await feed.produce(3)
    assert await _collect(feed, 1) == "3,"
    assert first.cancelled()


async def test_a_future_resolved_elsewhere_is_left_alone_and_its_message_kept(
    feed: Feed,
) -> None:
    first = _future()
    feed.source.arm(first)
    first.set_result("another source won")  # what dispatch_from does when two sources fire
    await feed.produce(4)
    assert await _collect(feed, 1) == "4,"
    assert first.result() == "another source won"


async def test_arming_a_done_future_changes_nothing(feed: Feed) -> None:
    await feed.produce(5)
    done = _future()
    done.set_result("done")
    feed.source.arm(done)
    assert done.result() == "done"
    assert await _collect(feed, 1) == "5,"


async def test_order_kept_nothing_lost_nothing_twice(feed: Feed) -> None:
    for i in range(20):
        await feed.produce(i)
    text = await _collect(feed, 20)
    assert text == "".join(f"{i}," for i in range(20))
    # Nothing more is pending: a new future stays unresolved.
    extra = _future()
    feed.source.arm(extra)
    await asyncio.sleep(0)
    assert not extra.done()
    extra.cancel()


async def test_interleaved_produce_and_arm_with_abandoned_futures(feed: Feed) -> None:
    """Half the waits are abandoned (as when another source fires first); no message is lost."""
    expected = ""
    received = ""
    for i in range(30):
        fut = _future()
        feed.source.arm(fut)
        if i % 2:
            fut.cancel()
        await feed.produce(i)
        expected += f"{i},"
        if not fut.cancelled():
            received += feed.payload(await asyncio.wait_for(fut, WAIT))
    received += await _collect(feed, 30 - received.count(","))
    assert received == expected


async def test_server_sources_repeat_their_final_message() -> None:
    """Rule 7: after the final message, ``arm`` keeps resolving with it and never hangs."""
    receive = WebSocketReceive(asyncio.get_running_loop(), lambda: None)
    receive.push({"type": "websocket.disconnect", "code": 1000})
    for _ in range(3):
        fut = _future()
        receive.arm(fut)
        assert fut.result()["type"] == "websocket.disconnect"

    feed = await _http_request_cycle()
    await feed.produce(1)
    first = _future()
    feed.source.arm(first)
    assert first.result()["body"] == b"1,"
    for step in feed.cleanup:  # connection_lost: the disconnect becomes the final message
        await step()
    for _ in range(3):
        fut = _future()
        feed.source.arm(fut)
        assert fut.result()["type"] == "http.disconnect"
