"""Layer metrics: sampled from statistics at scrape time, two bounded labels per layer."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels.layers.metrics import LayerCollector, layer_numbers
from tests.channels.layers.conftest import FakeClock
from tests.support.metrics import parse, value

LABELS = {"layer": "default", "backend": "InMemoryChannelLayer"}


def exposition(backends: dict[str, Any]) -> dict[Any, float]:
    registry = CollectorRegistry()
    registry.register(LayerCollector(backends))  # type: ignore[arg-type]
    samples, types = parse(generate_latest(registry).decode())
    assert types["channels_layer_messages_sent"] == "counter"
    assert types["channels_layer_queued_messages"] == "gauge"
    return samples


async def test_numbers_at_each_step() -> None:
    clock = FakeClock()
    layer = InMemoryChannelLayer(capacity=1, expiry=10, clock=clock)
    backends = {"default": layer}
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", a)
    await layer.group_add("room", b)
    await layer.group_send("room", {"type": "m"})
    s = exposition(backends)
    assert value(s, "channels_layer_messages_sent_total", **LABELS) == 2
    assert value(s, "channels_layer_group_send_deliveries_total", **LABELS) == 2
    assert value(s, "channels_layer_queued_messages", **LABELS) == 2
    assert value(s, "channels_layer_groups", **LABELS) == 1

    await layer.receive(a)
    with contextlib.suppress(ChannelFull):
        await layer.send(b, {"type": "m"})
    await layer.group_send("room", {"type": "m"})  # b full: dropped delivery
    s = exposition(backends)
    assert value(s, "channels_layer_messages_received_total", **LABELS) == 1
    assert value(s, "channels_layer_channel_full_total", **LABELS) == 1
    assert value(s, "channels_layer_group_send_full_total", **LABELS) == 1

    clock.advance(11)
    await layer.flush()  # nothing expires on flush; expiry is counted when checked
    await layer.group_discard("room", a)
    await layer.group_discard("room", b)
    await layer.send(b, {"type": "late"})  # b's old message expires when b is offered one
    s = exposition(backends)
    assert value(s, "channels_layer_groups", **LABELS) == 0


async def test_expired_messages_are_counted() -> None:
    clock = FakeClock()
    layer = InMemoryChannelLayer(capacity=1, expiry=10, clock=clock)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "old"})
    clock.advance(11)
    await layer.send(channel, {"type": "new"})  # the old one expired: room again
    s = exposition({"default": layer})
    assert value(s, "channels_layer_messages_expired_total", **LABELS) == 1


def test_layers_without_statistics_report_their_counters() -> None:
    class Minimal:
        group_send_full = 3

    assert layer_numbers(Minimal()) == {"group_send_full": 3.0}
    s = exposition({"default": InMemoryChannelLayer(), "other": Minimal()})
    assert value(s, "channels_layer_group_send_full_total", layer="other", backend="Minimal") == 3


def test_a_failing_layer_does_not_break_the_scrape() -> None:
    class Broken:
        def statistics(self) -> None:
            raise RuntimeError("boom")

    s = exposition({"broken": Broken(), "default": InMemoryChannelLayer()})
    assert value(s, "channels_layer_messages_sent_total", **LABELS) == 0
    assert not any(dict(labels).get("layer") == "broken" for _, labels in s)


def test_no_label_per_channel_or_group() -> None:
    labels = {
        key
        for _, sample_labels in exposition({"default": InMemoryChannelLayer()})
        for key, _ in sample_labels
    }
    assert labels <= {"layer", "backend"}


def test_redis_layer_reports_its_dropped_group_deliveries() -> None:
    from channels.layers.redis import RedisChannelLayer

    layer = RedisChannelLayer()  # no connection is made until first use
    layer.group_send_full = 2
    s = exposition({"redis": layer, "default": InMemoryChannelLayer()})
    labels = {"layer": "redis", "backend": "RedisChannelLayer"}
    assert value(s, "channels_layer_group_send_full_total", **labels) == 2
