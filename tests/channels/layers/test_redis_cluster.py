"""Both Redis layers on a real local Redis Cluster: settings, key layout, fan-out across slots,
and recovery from a coordinated failover and from a killed primary.

The conformance suite (test_conformance.py) also runs on the cluster; this file holds what only
a cluster has.  Failover tests take their own cluster (they change its topology).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_cluster import cluster_spec, slot_of
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from tests.support.redis_cluster import RedisCluster

pytestmark = pytest.mark.timeout(90)

LOST = "Redis Cluster node lost"
BACK = "Redis Cluster reachable again"


def cluster_hosts(cluster: RedisCluster) -> list[str]:
    """Every node as a startup node: a client that has not met the cluster yet must still
    find it when one of them is dead (as deployments should list several)."""
    return [f"redis+cluster://{host}:{port}" for host, port in cluster.startup_nodes]


@contextlib.asynccontextmanager
async def cluster_layers(
    cls: type[Any],
    cluster: RedisCluster,
    count: int = 1,
    command_timeout: float | None = None,
    **options: Any,
) -> AsyncIterator[list[Any]]:
    """``count`` layers of ``cls`` on ``cluster`` (giving up on a command after
    ``command_timeout`` when given), flushed and closed afterwards."""
    layers = [cls(hosts=cluster_hosts(cluster), **options) for _ in range(count)]
    if command_timeout is not None:
        for layer in layers:
            layer.command_timeout = command_timeout
    try:
        yield layers
    finally:
        for layer in layers:
            await layer.flush()
            await layer.close()


# ---------------------------------------------------------------- settings (no server)
def test_cluster_urls_are_recognised() -> None:
    spec = cluster_spec(
        ["rediss+cluster://user:p%40ss@10.0.0.1:7000", "rediss+cluster://10.0.0.2:7001/0"]
    )
    assert spec is not None
    assert spec.nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert spec.kwargs == {"ssl": True, "username": "user", "password": "p@ss"}
    assert cluster_spec(["redis://localhost:6379"]) is None
    assert cluster_spec(None) is None
    extra = cluster_spec([{"address": "redis+cluster://h:7000", "ssl_cert_reqs": "none"}])
    assert extra is not None and extra.kwargs == {"ssl_cert_reqs": "none"}


def test_cluster_settings_mistakes_are_errors() -> None:
    with pytest.raises(ValueError, match="mixes"):
        cluster_spec(["redis+cluster://h:7000", "redis://other:6379"])
    with pytest.raises(ValueError, match="database 0"):
        cluster_spec(["redis+cluster://h:7000/3"])
    with pytest.raises(ValueError, match="Sentinel"):
        RedisChannelLayer(
            hosts=["redis+cluster://h:7000"], sentinels=[("h", 26379)], services=["m"]
        )


# ---------------------------------------------------------------- shared cluster
@pytest.mark.redis
async def test_keys_carry_hash_tags_and_group_send_spans_every_primary(
    shared_redis_cluster: RedisCluster,
) -> None:
    """Named members whose lists live on all three primaries all get a group message: the
    send script runs once per slot, never across slots (which the cluster would refuse)."""
    async with cluster_layers(RedisChannelLayer, shared_redis_cluster, prefix="tags") as (layer,):
        assert layer._key("chat.x") == "tags:{chat.x}"
        assert slot_of(layer._key("chat.x")) == slot_of("chat.x")
        assert slot_of(layer._group_key("room")) == slot_of("room")
        owners: dict[int, list[str]] = {}
        for i in range(60):
            name = f"member.{i}"
            owners.setdefault(shared_redis_cluster.owner_of(slot_of(name)).port, []).append(name)
        assert len(owners) == 3
        members = [names[0] for names in owners.values()] + [await layer.new_channel()]
        for member in members:
            await layer.group_add("spread", member)
        await layer.group_send("spread", {"type": "to.all"})
        for member in members:
            assert await layer.receive(member) == {"type": "to.all"}


@pytest.mark.redis
async def test_one_envelope_per_process_and_armed_hand_off(
    shared_redis_cluster: RedisCluster,
) -> None:
    """Batching and the direct hand-off survive the cluster layout: a group of 20 local
    members in each of two processes costs one envelope per process list, and armed futures
    are resolved straight from the process's reader."""
    async with cluster_layers(
        RedisChannelLayer, shared_redis_cluster, count=2, prefix="batch"
    ) as layers:
        members = {layer: [await layer.new_channel() for _ in range(20)] for layer in layers}
        for layer, channels in members.items():
            for channel in channels:
                await layer.group_add("batched", channel)
        await layers[0].group_send("batched", {"type": "once"})
        client = layers[0]._state().clients[0]
        for layer in layers:  # nobody received yet: the envelopes wait in the lists
            assert await client.llen(layer._key(layer.local_name)) == 1
        loop = asyncio.get_running_loop()
        futures = []
        for layer, channels in members.items():
            for channel in channels:
                fut: asyncio.Future[dict[str, Any]] = loop.create_future()
                layer.arm(channel, fut)
                futures.append(fut)
        async with asyncio.timeout(10):
            assert await asyncio.gather(*futures) == [{"type": "once"}] * 40


@pytest.mark.redis
async def test_concurrent_subscriptions_on_a_fresh_pubsub_layer(
    shared_redis_cluster: RedisCluster,
) -> None:
    """Twenty consumers connecting at once: the first subscriptions to each primary race to
    open its subscriber connection; every one must be confirmed and hear its messages."""
    async with cluster_layers(
        RedisPubSubChannelLayer, shared_redis_cluster, command_timeout=5.0, prefix="race"
    ) as (layer,):
        channels = await asyncio.gather(*(layer.new_channel() for _ in range(20)))
        for i, channel in enumerate(channels):
            await layer.send(channel, {"i": i})
        for i, channel in enumerate(channels):
            assert await layer.receive(channel) == {"i": i}
        assert len(layer._cluster_subscriber().links) == 3


@pytest.mark.redis
async def test_group_left_and_joined_again_stays_subscribed(
    shared_redis_cluster: RedisCluster,
) -> None:
    """The last member leaves (SUNSUBSCRIBE) and a new one joins at once (SSUBSCRIBE): the
    reply to our own unsubscribe must not be taken for the node dropping the channel."""
    async with cluster_layers(RedisPubSubChannelLayer, shared_redis_cluster, prefix="again") as (
        layer,
    ):
        for round_ in range(5):
            first, second = await layer.new_channel(), await layer.new_channel()
            await layer.group_add("again", first)
            await layer.group_discard("again", first)
            await layer.group_add("again", second)
            await layer.group_send("again", {"n": round_})
            async with asyncio.timeout(5):
                assert await layer.receive(second) == {"n": round_}
            await layer.group_discard("again", second)
        assert layer.topology.events == 0  # nothing was mistaken for a topology change


# ---------------------------------------------------------------- failover
# Each failover test runs twice: a coordinated failover, then a killed primary.
FAILOVERS = pytest.mark.parametrize("kill", [False, True], ids=["failover", "killed-primary"])


@pytest.mark.redis
@pytest.mark.slow
@FAILOVERS
async def test_list_layer_rides_out_a_failover(
    redis_cluster: RedisCluster, kill: bool, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = redis_cluster
    caplog.set_level(logging.WARNING, logger="channels.layers")
    async with (
        cluster_layers(RedisChannelLayer, cluster, command_timeout=8.0) as (layer,),
        cluster_layers(RedisChannelLayer, cluster, command_timeout=8.0) as (sender,),
    ):
        local = await layer.new_channel()
        named = "failover.named"
        await sender.send(local, {"n": -1})
        assert await layer.receive(local) == {"n": -1}  # the reader is running
        # Fail the primary holding this process's list: its blocked BLPOP is cut.
        victim = cluster.owner_of(slot_of(layer._key(layer.local_name)))
        received: list[Any] = []
        last = asyncio.Event()

        async def consume() -> None:
            while True:
                received.append((await layer.receive(local))["n"])
                if received[-1] == "last":
                    last.set()

        consumer = asyncio.ensure_future(consume())
        switch = asyncio.ensure_future(
            asyncio.to_thread(cluster.kill_primary if kill else cluster.failover, victim)
        )
        sent: list[int] = []
        failed = 0
        n = 0
        while not switch.done():
            # Nothing may hang past the command timeout, whatever the cluster is doing.
            async with asyncio.timeout(sender.command_timeout + 2):
                try:
                    await sender.send(local, {"n": n})
                    sent.append(n)
                except Exception:
                    failed += 1
            n += 1
            await asyncio.sleep(0.01)  # pace the sender (about 100 sends/s), not a wait
        await switch
        after = list(range(n, n + 20))
        for i in after:
            await sender.send(local, {"n": i})
            sent.append(i)
        await sender.send(named, {"n": "named"})
        await sender.send(local, {"n": "last"})
        async with asyncio.timeout(sender.command_timeout + 5):
            await last.wait()
        consumer.cancel()
        assert await layer.receive(named) == {"n": "named"}
        assert received[-len(after) - 1 : -1] == after  # everything after the switch, in order
        assert len(received) == len(set(received))  # nothing twice
        lost = set(sent) - set(received)
        if not kill:
            # A coordinated failover lets the replica catch up first: nothing acknowledged
            # is lost (writes are paused, then redirected).
            assert not lost
        # Logged once for the whole switch (not once per retry), and once when it is over;
        # the sender's failures went to its caller instead.  A coordinated failover may pass
        # unnoticed: a blocked BLPOP is either ended (-UNBLOCKED, retried: logged) or
        # redirected (-MOVED, followed by the client: nothing to log).
        messages = [r.getMessage() for r in caplog.records]
        lost_logs = len([m for m in messages if LOST in m])
        assert lost_logs == 1 if kill else lost_logs <= 1, messages
        assert len([m for m in messages if BACK in m]) == lost_logs, messages


@pytest.mark.redis
@pytest.mark.slow
@FAILOVERS
async def test_pubsub_layer_rides_out_a_failover(
    redis_cluster: RedisCluster, kill: bool, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = redis_cluster
    caplog.set_level(logging.WARNING, logger="channels.layers")
    options: dict[str, Any] = {"on_reconnect": "layer.reconnect"}
    async with (
        cluster_layers(RedisPubSubChannelLayer, cluster, command_timeout=8.0, **options) as (
            layer,
        ),
        cluster_layers(RedisPubSubChannelLayer, cluster, command_timeout=8.0) as (sender,),
    ):
        channel = await layer.new_channel()
        await layer.group_add("survivors", channel)
        await sender.group_send("survivors", {"type": "before"})
        assert await layer.receive(channel) == {"type": "before"}
        topic_slot = slot_of(layer._topic(channel))
        victim = cluster.owner_of(topic_slot)
        if kill:
            await asyncio.to_thread(cluster.kill_primary, victim)
        else:
            await asyncio.to_thread(cluster.failover, victim)
        # The subscriptions move to the promoted replica: a killed node cuts the connection;
        # a demoted one drops its shard subscribers itself (Redis 7 sends them an unasked
        # sunsubscribe).  The layer says when it has re-subscribed, with on_reconnect.
        async with asyncio.timeout(layer.command_timeout + 10):
            while (await layer.receive(channel))["type"] != "layer.reconnect":
                pass
        sharded = layer._cluster_subscriber()
        new_owner = cluster.owner_of(topic_slot)
        assert new_owner is not victim
        assert sorted(sharded.links) == sorted(  # one connection per owning primary, no more
            {
                f"127.0.0.1:{cluster.owner_of(slot_of(t)).port}"
                for t in (layer._topic(channel), layer._group_topic("survivors"))
            }
        )
        await sender.send(channel, {"type": "after"})
        assert await layer.receive(channel) == {"type": "after"}
        await sender.group_send("survivors", {"type": "group-after"})
        assert await layer.receive(channel) == {"type": "group-after"}
        messages = [r.getMessage() for r in caplog.records]
        if kill:  # a demoted node ends subscriptions politely: nothing failed, nothing logged
            assert len([m for m in messages if LOST in m]) == 1, messages
            assert len([m for m in messages if BACK in m]) == 1, messages
