"""Redis layer specifics against real redis-server processes: persistence across a restart,
reconnection, no leaked connections across event loops, sharding, encryption, and group_send
across OS processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis as sync_redis
from asgiref.sync import async_to_sync

from channels.layers.redis import HashRing, RedisChannelLayer, parse_hosts
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.channels.layers.conftest import FakeClock
from tests.support.redis import RedisSentinel, RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

REPO_ROOT = Path(__file__).resolve().parents[3]


async def test_queued_messages_survive_a_restart_with_persistence(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(persistent=True)
    layer = RedisChannelLayer(hosts=[server.url])
    try:
        for i in range(3):
            await layer.send("durable", {"i": i})
        server.restart()  # SIGTERM: redis fsyncs its append-only file, then comes back
        assert [(await layer.receive("durable"))["i"] for _ in range(3)] == [0, 1, 2]
    finally:
        await layer.flush()
        await layer.close()


async def test_reconnects_after_redis_goes_away(redis_server: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url])
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"n": 1})
        assert await layer.receive(channel) == {"n": 1}  # the process reader is now running
        pending = asyncio.ensure_future(layer.receive(channel))
        named = asyncio.ensure_future(layer.receive("named.after.restart"))
        await asyncio.sleep(0)
        redis_server.restart()  # without persistence: everything is gone, the layer copes
        await layer.send(channel, {"n": 2})
        await layer.send("named.after.restart", {"n": 3})
        assert await pending == {"n": 2}
        assert await named == {"n": 3}
    finally:
        await layer.flush()
        await layer.close()


def test_no_connection_leak_across_event_loops(redis_server: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url])

    async def use_layer(explicit_close: bool) -> None:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "local"})
        assert await layer.receive(channel) == {"type": "local"}
        await layer.send("shared", {"type": "shared"})
        assert await layer.receive("shared") == {"type": "shared"}
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "group"})
        assert await layer.receive(channel) == {"type": "group"}
        await layer.group_discard("g", channel)
        assert redis_server.client_count() >= 1
        if explicit_close:
            await layer.close_pools()

    for round_number in range(6):
        # Half the loops close the pools explicitly, half rely on the loop-close hook.
        asyncio.run(use_layer(explicit_close=round_number % 2 == 0))
        assert redis_server.client_count() == 0
    assert len(layer._loops) == 0


async def test_sharding_across_two_servers(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    first, second = redis_server_factory(), redis_server_factory()
    layer = RedisChannelLayer(hosts=[first.url, {"address": second.url}])
    reader = RedisChannelLayer(hosts=[first.url, {"address": second.url}])
    try:
        names = [f"shard.test.{i}" for i in range(40)]
        for i, name in enumerate(names):
            await layer.send(name, {"i": i})
        sizes = []
        for server in (first, second):
            client = sync_redis.Redis(host=server.host, port=server.port)
            sizes.append(client.dbsize())
            client.close()
        assert sum(sizes) == 40
        assert min(sizes) > 0  # both shards hold some channels
        # Another instance with the same hosts finds every channel on the same shard.
        for i, name in enumerate(names):
            assert await reader.receive(name) == {"i": i}
        # Groups and process-local channels work across shards too.
        members = [await reader.new_channel() for _ in range(3)]
        for member in members:
            await layer.group_add("sharded-group", member)
        await layer.group_add("sharded-group", "shard.test.0")
        await layer.group_send("sharded-group", {"type": "all"})
        for member in [*members, "shard.test.0"]:
            assert await reader.receive(member) == {"type": "all"}
    finally:
        await layer.flush()
        await layer.close()
        await reader.close()


def test_process_local_names_route_to_their_process_list() -> None:
    layer = RedisChannelLayer(hosts=["redis://x"])
    cid = layer.client_prefix
    assert layer.route(f"specific.{cid}!abc") == layer.local_name
    assert layer.route(f"chat.room.{cid}!abc") == layer.local_name
    assert layer.route("websocket.send!abc") == "websocket.send!"  # upstream-style names
    assert layer.route("plain.channel") == "plain.channel"
    assert layer.route("x.ABCDEF123456!y") == "x.ABCDEF123456!"  # not our id shape


def test_hash_ring_is_consistent() -> None:
    names = [f"channel.{i}" for i in range(2000)]
    three = HashRing(["a", "b", "c"])
    four = HashRing(["a", "b", "c", "d"])
    moved = sum(1 for n in names if three.shard(n) != four.shard(n))
    # Adding a fourth shard should move about a quarter of the names, not most of them.
    assert moved < len(names) * 0.4
    assert {three.shard(n) for n in names} == {0, 1, 2}


def test_host_parsing() -> None:
    specs = parse_hosts(
        [
            "redis://h1:6379/0",
            ("h2", 6380),
            {"address": ("h3", 6381), "password": "pw"},
            {"address": "redis://h4:1"},
            {"sentinels": [("s1", 26379)], "master_name": "mymaster"},
        ]
    )
    assert [s.ident for s in specs] == [
        "redis://h1:6379/0",
        "h2:6380",
        "h3:6381",
        "redis://h4:1",
        "sentinel:mymaster",
    ]
    assert specs[2].kwargs["password"] == "pw"
    top = parse_hosts(None, sentinels=[("s", 1)], services=["one", "two"])
    assert [s.master_name for s in top] == ["one", "two"]
    with pytest.raises(ValueError, match="master_name"):
        parse_hosts([{"sentinels": [("s", 1)]}])
    with pytest.raises(ValueError, match="cannot understand"):
        parse_hosts([42])
    with pytest.raises(TypeError, match="unexpected RedisChannelLayer options"):
        RedisChannelLayer(hosts=["redis://x"], bogus=True)
    with pytest.raises(ValueError, match="serializer_format"):
        RedisChannelLayer(hosts=["redis://x"], serializer_format="pickle")
    with pytest.raises(KeyError):  # channels_redis raises its SerializerDoesNotExist(KeyError)
        RedisChannelLayer(hosts=["redis://x"], serializer_format="yaml")
    RedisChannelLayer(hosts=["redis://x"], serializer_format="json")
    RedisChannelLayer(hosts=["redis://x"], random_prefix_length=12, serializer_format="msgpack")


async def test_encrypted_payloads_are_not_plaintext(redis_server: RedisServer) -> None:
    old = RedisChannelLayer(hosts=[redis_server.url], symmetric_encryption_keys=["old-secret"])
    rotated = RedisChannelLayer(
        hosts=[redis_server.url], symmetric_encryption_keys=["new-secret", "old-secret"]
    )
    stranger = RedisChannelLayer(hosts=[redis_server.url], symmetric_encryption_keys=["other"])
    try:
        await old.send("secret.channel", {"type": "x", "text": "plaintext-marker"})
        client = sync_redis.Redis(host=redis_server.host, port=redis_server.port)
        raw = client.lrange("asgi:secret.channel", 0, -1)
        client.close()
        assert len(raw) == 1
        assert b"plaintext-marker" not in raw[0]
        # A layer that still knows the old key (rotation) can read it.
        assert await rotated.receive("secret.channel") == {"type": "x", "text": "plaintext-marker"}
        # A layer with the wrong key drops what it cannot decrypt (logged, counted), then
        # goes on with messages it can read.
        await old.send("secret.channel", {"type": "unreadable"})
        await stranger.send("secret.channel", {"type": "readable"})
        assert await stranger.receive("secret.channel") == {"type": "readable"}
        assert stranger.decode_errors == 1
    finally:
        await old.flush()
        for layer in (old, rotated, stranger):
            await layer.close()


def test_single_key_string_is_rejected() -> None:
    with pytest.raises(ValueError, match="list of keys"):
        RedisChannelLayer(symmetric_encryption_keys="just-one")


CHILD = r"""
import asyncio, json, sys
from channels.layers.redis import RedisChannelLayer

async def main():
    url, group, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    layer = RedisChannelLayer(hosts=[url])
    channels = [await layer.new_channel() for _ in range(count)]
    for channel in channels:
        await layer.group_add(group, channel)
    print(json.dumps({"ready": channels}), flush=True)
    got = {}
    for channel in channels:
        got[channel] = []
        while True:
            message = await layer.receive(channel)
            if message["type"] == "stop":
                break
            got[channel].append(message["n"])
    print(json.dumps({"got": got}), flush=True)
    await layer.close()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_group_send_across_processes_delivers_exactly_once(
    redis_server: RedisServer,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            redis_server.url,
            "everyone",
            str(count),
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        for count in (1, 2, 3)
    ]
    layer = RedisChannelLayer(hosts=[redis_server.url])
    try:
        all_channels: list[str] = []
        for child in children:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            all_channels += json.loads(line)["ready"]
        assert len(set(all_channels)) == 6
        for n in range(5):
            await layer.group_send("everyone", {"type": "news", "n": n})
        for channel in all_channels:
            await layer.send(channel, {"type": "stop"})
        for child in children:
            out, _ = await asyncio.wait_for(child.communicate(), 30)
            got = json.loads(out.decode().strip().splitlines()[-1])["got"]
            for numbers in got.values():
                assert numbers == [0, 1, 2, 3, 4]
            assert child.returncode == 0
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.communicate()
        await layer.flush()
        await layer.close()


async def test_pubsub_resubscribes_after_restart(redis_server: RedisServer) -> None:
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url])
    try:
        channel = await layer.new_channel()
        await layer.group_add("ps-group", channel)
        redis_server.restart()
        # Pub/sub keeps nothing: messages published before the reader has re-subscribed are
        # lost by design, so publish until one arrives (bounded).
        for attempt in range(100):
            await layer.group_send("ps-group", {"attempt": attempt})
            try:
                message = await asyncio.wait_for(layer.receive(channel), 0.1)
            except TimeoutError:
                continue
            assert "attempt" in message
            break
        else:
            pytest.fail("the pub/sub layer never re-subscribed after the restart")
    finally:
        await layer.flush()
        await layer.close()


async def test_sentinel_hosts_find_the_master(redis_sentinel: RedisSentinel) -> None:
    sentinels = [("127.0.0.1", redis_sentinel.port)]
    by_host = RedisChannelLayer(hosts=[{"sentinels": sentinels, "master_name": "mymaster"}])
    by_service = RedisChannelLayer(sentinels=sentinels, services=["mymaster"])
    try:
        await by_host.send("via.sentinel", {"type": "x"})
        assert await by_service.receive("via.sentinel") == {"type": "x"}
        channel = await by_service.new_channel()
        await by_host.group_add("sentinel-group", channel)
        await by_host.group_send("sentinel-group", {"type": "y"})
        assert await by_service.receive(channel) == {"type": "y"}
    finally:
        await by_host.flush()
        await by_host.close()
        await by_service.close()


def test_async_to_sync_calls_leak_no_connections(redis_server: RedisServer) -> None:
    """Sync code (views, management commands) calling the layer through async_to_sync gets a
    new event loop per call; each loop's connections are closed with it."""
    layer = RedisChannelLayer(hosts=[redis_server.url])
    for i in range(5):
        async_to_sync(layer.send)("from.sync", {"i": i})
        assert redis_server.client_count() == 0
    assert [async_to_sync(layer.receive)("from.sync")["i"] for _ in range(5)] == list(range(5))
    assert redis_server.client_count() == 0


async def test_pubsub_flush_forgets_subscriptions_and_keeps_working(
    redis_server: RedisServer,
) -> None:
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url])
    try:
        old = await layer.new_channel()
        await layer.group_add("ps-flush", old)
        await layer.flush()
        fresh = await layer.new_channel()
        await layer.group_send("ps-flush", {"type": "to-nobody"})
        await layer.send(fresh, {"type": "sentinel"})
        assert await layer.receive(fresh) == {"type": "sentinel"}
        # Receiving on the old channel subscribes it again.
        waiting = asyncio.ensure_future(layer.receive(old))
        # Join that subscription and wait for Redis's confirmation before publishing.
        await layer._subscribe(old, layer._topic(old))
        await layer.send(old, {"type": "again"})
        assert await waiting == {"type": "again"}
    finally:
        await layer.flush()
        await layer.close()


async def test_mailboxes_of_abandoned_local_channels_are_swept(redis_server: RedisServer) -> None:
    clock = FakeClock()
    layer = RedisChannelLayer(hosts=[redis_server.url], expiry=5, clock=clock)
    try:
        abandoned, alive = await layer.new_channel(), await layer.new_channel()
        await layer.send(abandoned, {"type": "never-read"})
        await layer.send(alive, {"type": "one"})
        assert await layer.receive(alive) == {"type": "one"}
        assert abandoned in layer._mailboxes  # dispatched by the reader, waiting
        clock.advance(6)
        await layer.send(alive, {"type": "two"})
        assert await layer.receive(alive) == {"type": "two"}
        assert abandoned not in layer._mailboxes
    finally:
        await layer.flush()
        await layer.close()


async def test_group_send_counts_and_logs_full_members(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    layer = RedisChannelLayer(
        hosts=[redis_server.url], capacity=5, channel_capacity={"member.full": 1}
    )
    try:
        await layer.group_add("crowded", "member.full")
        await layer.group_add("crowded", "member.ok")
        await layer.send("member.full", {"type": "filler"})
        with caplog.at_level(logging.INFO, logger="channels.layers"):
            await layer.group_send("crowded", {"type": "news"})
            await layer.group_send("crowded", {"type": "more"})
        assert layer.group_send_full == 2
        # channels_redis's line: once per call, at INFO, with the counts.
        lines = [(r.levelno, r.getMessage()) for r in caplog.records]
        assert lines == [(logging.INFO, "1 of 2 channels over capacity in group crowded")] * 2
        assert await layer.receive("member.ok") == {"type": "news"}
        assert await layer.receive("member.ok") == {"type": "more"}
        assert await layer.receive("member.full") == {"type": "filler"}
    finally:
        await layer.flush()
        await layer.close()


def test_forked_worker_gets_its_own_process_local_name(redis_server: RedisServer) -> None:
    """A layer built before ``--workers`` forks: each process must read only its own list."""
    layer = RedisChannelLayer(hosts=[redis_server.url])
    parent_name = layer.local_name

    async def round_trip() -> None:
        channel = await layer.new_channel()
        assert channel.startswith(layer.local_name)
        await layer.send(channel, {"pid": os.getpid()})
        assert await layer.receive(channel) == {"pid": os.getpid()}

    asyncio.run(round_trip())
    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return into pytest
        code = 1
        try:
            if layer.local_name != parent_name:
                asyncio.run(round_trip())
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert layer.local_name == parent_name
    asyncio.run(round_trip())


def test_pubsub_no_connection_leak_across_event_loops(redis_server: RedisServer) -> None:
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url])

    async def use_layer() -> None:
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "group"})
        assert await layer.receive(channel) == {"type": "group"}
        # No explicit close: asyncio.run() cancels the reader, then closes the loop, and
        # the layer closes that loop's connections just before.

    for _ in range(4):
        asyncio.run(use_layer())
        assert redis_server.client_count() == 0


# --- channels_redis behaviours projects rely on ------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_json_serializer_format(redis_server: RedisServer, kind: str) -> None:
    make = RedisChannelLayer if kind == "redis" else RedisPubSubChannelLayer
    layer = make(hosts=[redis_server.url], serializer_format="json")
    try:
        channel = await layer.new_channel()
        message = {"type": "chat.message", "text": "héllo", "n": [1, 2.5, None, True]}
        await layer.send(channel, message)
        assert await layer.receive(channel) == message
        assert layer.deserialize(layer.serialize(message)) == message
        assert json.loads(layer.serialize(message)) == message  # JSON on the wire
        with pytest.raises(TypeError, match="json-serialisable"):
            await layer.send(channel, {"type": "x", "bytes": b"\x00"})
    finally:
        await layer.flush()
        await layer.close()


class TaggedWire(RedisChannelLayer):
    """A subclass changing the wire format, as channels_redis's docs suggest."""

    def serialize(self, message: dict[str, object]) -> bytes:
        return b"TAG:" + json.dumps(message).encode()

    def deserialize(self, data: bytes) -> dict[str, object]:
        assert data.startswith(b"TAG:")
        result: dict[str, object] = json.loads(data[4:])
        return result


class TaggedPubSub(RedisPubSubChannelLayer):
    serialize = TaggedWire.serialize  # type: ignore[assignment]
    deserialize = TaggedWire.deserialize  # type: ignore[assignment]


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
async def test_serialize_and_deserialize_can_be_overridden(
    redis_server: RedisServer, kind: str
) -> None:
    layer: RedisChannelLayer | RedisPubSubChannelLayer = (
        TaggedWire(hosts=[redis_server.url])
        if kind == "redis"
        else TaggedPubSub(hosts=[redis_server.url])
    )
    try:
        local = await layer.new_channel()
        await layer.group_add("tagged", local)
        await layer.group_send("tagged", {"type": "to.group"})
        await layer.send(local, {"type": "to.channel"})
        assert await layer.receive(local) == {"type": "to.group"}
        assert await layer.receive(local) == {"type": "to.channel"}
        if kind == "redis":
            await layer.send("named.tagged", {"type": "stored"})
            client = sync_redis.Redis(host=redis_server.host, port=redis_server.port)
            (raw,) = client.lrange("asgi:named.tagged", 0, -1)
            client.close()
            assert b'\nTAG:{"type": "stored"}' in raw  # our envelope around their payload
            assert await layer.receive("named.tagged") == {"type": "stored"}
    finally:
        await layer.flush()
        await layer.close()


async def test_a_full_channel_does_not_hold_up_the_others(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """One consumer stops reading; the process's reader keeps serving its other channels,
    and its mailbox keeps the newest messages (the oldest are dropped and counted)."""
    layer = RedisChannelLayer(hosts=[redis_server.url], channel_capacity={"stuck.*": 2})
    try:
        stuck, busy = await layer.new_channel("stuck"), await layer.new_channel("busy")
        await layer.group_add("feed", stuck)
        with caplog.at_level(logging.INFO, logger="channels.layers"):
            for i in range(5):
                await layer.group_send("feed", {"type": "feed", "i": i})
            for i in range(3):
                await layer.send(busy, {"type": "busy", "i": i})
            # Same process list, FIFO: once busy's messages arrive, stuck's were dispatched.
            assert [(await layer.receive(busy))["i"] for _ in range(3)] == [0, 1, 2]
        box = layer._mailboxes.boxes[stuck]
        assert [m["i"] for _, m in box.buffer] == [3, 4]  # the newest two
        assert layer.group_send_full == 3
        assert "over capacity in this process" in caplog.text
    finally:
        await layer.flush()
        await layer.close()


async def test_pubsub_concurrent_first_subscriptions_all_confirm(redis_server: RedisServer) -> None:
    """Twenty consumers arriving at once on a fresh layer: each subscription is confirmed and
    delivered to (redis-py opens the pub/sub connection on the first subscribe; concurrent
    first subscribes once left all but one on orphaned connections)."""
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url])
    try:
        async with asyncio.timeout(20):
            channels = await asyncio.gather(*(layer.new_channel() for _ in range(20)))
            for channel in channels:
                await layer.send(channel, {"type": "hello", "to": channel})
            for channel in channels:
                assert await layer.receive(channel) == {"type": "hello", "to": channel}
    finally:
        await layer.flush()
        await layer.close()


async def test_pubsub_group_rejoined_while_the_last_member_leaves(
    redis_server: RedisServer,
) -> None:
    """The last local member leaves (its release unsubscribes the group) while another channel
    joins: the group must stay subscribed for the newcomer."""
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url])
    try:
        leaver, newcomer = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("door", leaver)
        leaving = asyncio.ensure_future(layer.release_channel(leaver))
        await asyncio.sleep(0)  # the release is under way (a yield, not a timed wait)
        await layer.group_add("door", newcomer)
        await leaving
        await layer.group_send("door", {"type": "welcome"})
        async with asyncio.timeout(10):
            assert await layer.receive(newcomer) == {"type": "welcome"}
    finally:
        await layer.flush()
        await layer.close()
