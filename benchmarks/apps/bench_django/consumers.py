"""The consumers of workloads C (echo), D (group fan-out) and E (idle connections)."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = "bench"


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class GroupMember(AsyncWebsocketConsumer):
    # websocket_connect adds the consumer to each of these groups (and removes it on disconnect).
    groups = [GROUP]

    async def bench_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class Trigger(AsyncWebsocketConsumer):
    """Receives "burst <count> <first_seq>" and group_sends that many numbered messages.

    Each message text is the sequence number padded to 64 bytes, so clients can count what
    arrived and what was lost.  "done" is sent back once every group_send has returned.
    """

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            return
        _, count, first = text_data.split()
        assert self.channel_layer is not None
        for seq in range(int(first), int(first) + int(count)):
            await self.channel_layer.group_send(
                GROUP, {"type": "bench.message", "text": str(seq).ljust(64)}
            )
        await self.send(text_data="done")
