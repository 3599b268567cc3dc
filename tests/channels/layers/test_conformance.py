"""One behaviour suite, run against every channel layer (in-memory, Redis, Redis pub/sub).

Absence of a message is proven by sending a sentinel afterwards and checking it is the next
thing received (FIFO), never by waiting for a timeout.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from channels.exceptions import ChannelFull
from tests.channels.layers.conftest import LayerKit

pytestmark = pytest.mark.timeout(30)


async def test_send_receive_round_trip(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    channel = await layer.new_channel()
    message = {"type": "test.message", "text": "héllo", "bytes": b"\x00\xff", "n": [1, 2.5, None]}
    await layer.send(channel, message)
    assert await layer.receive(channel) == message


async def test_named_channel_waits_for_receiver(layer_kit: LayerKit) -> None:
    if not layer_kit.persistent:
        pytest.skip(f"{layer_kit.kind} does not keep messages for channels nobody receives on")
    layer = layer_kit.make()
    await layer.send("named.channel", {"type": "one"})
    # Over Redis a second instance (another process in real life) receives it.
    other = layer if layer_kit.kind == "memory" else layer_kit.make()
    assert await other.receive("named.channel") == {"type": "one"}


async def test_new_channel_names_are_unique_and_valid(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    names = {await layer.new_channel() for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert layer.require_valid_channel_name(name)
        assert "!" not in name or layer.non_local_name(name) != name
    custom = await layer.new_channel(prefix="chat")
    assert "chat" in custom


async def test_new_channel_names_have_the_upstream_shape(layer_kit: LayerKit) -> None:
    """``<prefix>.<process id>!<random>``, the prefix first (as channels_redis makes them)."""
    layer = layer_kit.make()
    default, chat, nested = (
        await layer.new_channel(),
        await layer.new_channel(prefix="chat"),
        await layer.new_channel(prefix="a.b-c_d"),
    )
    pattern = re.compile(r"(?P<prefix>.+)\.(?P<process>[A-Za-z0-9]+)!(?P<random>[A-Za-z0-9]+)")
    parts = [pattern.fullmatch(name) for name in (default, chat, nested)]
    assert all(parts), (default, chat, nested)
    assert [p["prefix"] for p in parts if p] == ["specific", "chat", "a.b-c_d"]
    assert len({p["process"] for p in parts if p}) == 1  # one process part per layer
    # Every prefix is received and delivered like the default one.
    for name in (default, chat, nested):
        await layer.send(name, {"type": "to", "name": name})
    for name in (default, chat, nested):
        assert await layer.receive(name) == {"type": "to", "name": name}
    with pytest.raises(TypeError):
        await layer.new_channel(prefix="bad prefix")


async def test_release_of_unknown_or_busy_channel_is_harmless(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    await layer.release_channel("never.used")
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # let it start waiting (a yield, not a timed wait)
    if layer_kit.layer == "pubsub":
        await asyncio.sleep(0)  # its subscription check is one more step
    await layer.release_channel(channel)  # somebody still receives: nothing is dropped
    await layer.send(channel, {"type": "still-here"})
    assert await waiting == {"type": "still-here"}


async def test_message_ordering(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    channel = await layer.new_channel()
    for i in range(30):
        await layer.send(channel, {"type": "seq", "i": i})
    assert [(await layer.receive(channel))["i"] for _ in range(30)] == list(range(30))


async def test_groups_fan_out_and_discard(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    a, b, outsider = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("room", a)
    await layer.group_add("room", b)
    await layer.group_add("room", a)  # adding twice must not deliver twice
    await layer.group_send("room", {"type": "hello"})
    assert await layer.receive(a) == {"type": "hello"}
    assert await layer.receive(b) == {"type": "hello"}

    await layer.group_discard("room", b)
    await layer.group_discard("room", outsider)  # not a member: no error
    await layer.group_discard("nobody-here", a)  # unknown group: no error
    await layer.group_send("room", {"type": "second"})
    for channel in (a, b, outsider):
        await layer.send(channel, {"type": "sentinel"})
    assert await layer.receive(a) == {"type": "second"}
    assert await layer.receive(a) == {"type": "sentinel"}
    assert await layer.receive(b) == {"type": "sentinel"}
    assert await layer.receive(outsider) == {"type": "sentinel"}


async def test_group_send_to_empty_group_is_a_no_op(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    await layer.group_send("empty-group", {"type": "nobody"})


async def test_flush_drops_messages_and_groups(layer_kit: LayerKit) -> None:
    if not layer_kit.persistent:
        pytest.skip(f"{layer_kit.kind} keeps nothing a flush could drop before delivery")
    layer = layer_kit.make()
    await layer.send("flush.me", {"type": "old"})
    await layer.group_add("flush-group", "flush.me")
    await layer.flush()
    await layer.group_send("flush-group", {"type": "to-group"})
    await layer.send("flush.me", {"type": "new"})
    assert await layer.receive("flush.me") == {"type": "new"}


async def test_capacity_raises_channel_full(layer_kit: LayerKit) -> None:
    if not layer_kit.raises_full:
        pytest.skip(f"{layer_kit.kind} cannot know a remote receiver's buffer is full")
    layer = layer_kit.make(capacity=3, channel_capacity={"tiny.*": 1})
    for i in range(3):
        await layer.send("cap.test", {"i": i})
    with pytest.raises(ChannelFull):
        await layer.send("cap.test", {"i": 3})
    assert (await layer.receive("cap.test"))["i"] == 0
    await layer.send("cap.test", {"i": 4})  # room again

    await layer.send("tiny.one", {"i": 0})
    with pytest.raises(ChannelFull):
        await layer.send("tiny.one", {"i": 1})
    assert layer.get_capacity("tiny.one") == 1
    assert layer.get_capacity("cap.test") == 3


async def test_full_buffer_drops_are_counted_for_pubsub(layer_kit: LayerKit) -> None:
    if layer_kit.raises_full:
        pytest.skip("covered by test_capacity_raises_channel_full")
    layer = layer_kit.make(capacity=2)
    channel = await layer.new_channel()
    barrier = await layer.new_channel()
    for i in range(5):
        await layer.send(channel, {"i": i})
    # Published in order on one connection and read by one reader: once the barrier message
    # is in, all five were offered to the full buffer.
    await layer.send(barrier, {"i": "barrier"})
    assert (await layer.receive(barrier))["i"] == "barrier"
    assert layer.dropped == 3
    assert (await layer.receive(channel))["i"] == 0
    assert (await layer.receive(channel))["i"] == 1
    await layer.send(channel, {"i": "sentinel"})
    assert (await layer.receive(channel))["i"] == "sentinel"
    assert layer.dropped == 3


async def test_expired_messages_are_not_delivered(layer_kit: LayerKit) -> None:
    layer = layer_kit.make(expiry=5)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "stale"})
    layer_kit.clock.advance(6)
    await layer.send(channel, {"type": "fresh"})
    assert await layer.receive(channel) == {"type": "fresh"}


async def test_expired_messages_free_capacity(layer_kit: LayerKit) -> None:
    if not layer_kit.raises_full:
        pytest.skip(f"{layer_kit.kind} has no sender-side capacity")
    layer = layer_kit.make(expiry=5, capacity=1)
    await layer.send("expiry.cap", {"type": "stale"})
    with pytest.raises(ChannelFull):
        await layer.send("expiry.cap", {"type": "refused"})
    layer_kit.clock.advance(6)
    await layer.send("expiry.cap", {"type": "fresh"})
    assert await layer.receive("expiry.cap") == {"type": "fresh"}


BAD_NAMES: list[Any] = ["", "has space", "ünïcode", "a" * 100, "tab\tname", "new\nline", "x!y!z"]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_channel_names_rejected(layer_kit: LayerKit, name: str) -> None:
    layer = layer_kit.make()
    with pytest.raises(ValueError, match="name"):
        await layer.send(name, {"type": "x"})
    with pytest.raises(TypeError):  # upstream Channels raised TypeError: still caught by it
        await layer.send(name, {"type": "x"})
    with pytest.raises(ValueError):
        await layer.receive(name)
    with pytest.raises(ValueError):
        await layer.group_add("fine", name)


async def test_invalid_group_names_and_types_rejected(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    channel = await layer.new_channel()
    for bad in ["", "a!b", "sp ace", "g" * 100]:
        with pytest.raises(ValueError, match="Group name"):
            await layer.group_add(bad, channel)
        with pytest.raises(ValueError, match="Group name"):
            await layer.group_send(bad, {"type": "x"})
    # Upstream's types and exact messages (projects' tests compare them); the offending
    # value rides along as an exception note.
    with pytest.raises(TypeError) as info:
        await layer.send(123, {"type": "x"})
    assert str(info.value) == layer.invalid_name_error.format("Channel")
    assert "a int, not a str" in "".join(info.value.__notes__)
    with pytest.raises(TypeError) as info:
        await layer.group_add(None, channel)
    assert str(info.value) == layer.invalid_name_error.format("Group")
    with pytest.raises(TypeError) as info:
        await layer.group_add("g" * 100, channel)
    assert str(info.value) == (
        "Group name must be a valid unicode string with length < 100 containing only ASCII "
        "alphanumerics, hyphens, underscores, or periods."
    )
    with pytest.raises(TypeError, match="message must be a dict"):
        await layer.send(channel, ["not", "a", "dict"])
    with pytest.raises(ValueError, match="__asgi_channel__"):
        await layer.send(channel, {"__asgi_channel__": "x"})
    # The longest valid name (99 characters) is fine.
    assert layer.require_valid_channel_name("c" * 99)
    assert layer.require_valid_group_name("g" * 99)


async def test_concurrent_receivers_on_process_local_channels(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    channels = [await layer.new_channel() for _ in range(10)]
    receivers = [asyncio.ensure_future(layer.receive(c)) for c in channels]
    for i, channel in reversed(list(enumerate(channels))):
        await layer.send(channel, {"i": i})
    results = await asyncio.gather(*receivers)
    assert [r["i"] for r in results] == list(range(10))


async def test_two_receivers_on_one_channel_each_get_one(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    channel = await layer.new_channel()
    first = asyncio.ensure_future(layer.receive(channel))
    second = asyncio.ensure_future(layer.receive(channel))
    await layer.send(channel, {"i": 1})
    await layer.send(channel, {"i": 2})
    got = sorted(r["i"] for r in await asyncio.gather(first, second))
    assert got == [1, 2]


async def test_cancelled_receive_loses_nothing(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # let it start waiting (a yield, not a timed wait)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await layer.send(channel, {"type": "after-cancel"})
    assert await layer.receive(channel) == {"type": "after-cancel"}


async def test_extensions_advertised(layer_kit: LayerKit) -> None:
    layer = layer_kit.make()
    assert "groups" in layer.extensions
    assert "flush" in layer.extensions


async def test_cancelled_receive_on_named_channel_loses_nothing(layer_kit: LayerKit) -> None:
    if not layer_kit.persistent:
        pytest.skip(f"{layer_kit.kind} does not keep messages for channels nobody receives on")
    layer = layer_kit.make()
    waiting = asyncio.ensure_future(layer.receive("cancel.named"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for i in range(3):
        await layer.send("cancel.named", {"i": i})
    assert [(await layer.receive("cancel.named"))["i"] for _ in range(3)] == [0, 1, 2]


async def test_groups_span_layer_instances(layer_kit: LayerKit) -> None:
    """Members living in different processes (layer instances) all get a group message."""
    first = layer_kit.make()
    second = first if layer_kit.kind == "memory" else layer_kit.make()
    a = await first.new_channel()
    b = await second.new_channel()
    await first.group_add("spanning", a)
    await second.group_add("spanning", b)
    await first.group_send("spanning", {"type": "everywhere"})
    assert await first.receive(a) == {"type": "everywhere"}
    assert await second.receive(b) == {"type": "everywhere"}
    await second.group_discard("spanning", b)
    await second.group_send("spanning", {"type": "only-a"})
    await second.send(b, {"type": "sentinel"})
    assert await first.receive(a) == {"type": "only-a"}
    assert await second.receive(b) == {"type": "sentinel"}
