"""Memory left behind per closed connection, in process, RSS-independent.

Chat consumers (group_add on connect, group_discard on disconnect, one message each) connect
and close through ``WebsocketCommunicator``; afterwards we count the objects still alive and the
bytes tracemalloc still sees as allocated, divided by the number of closed connections.

    .venv/bin/python -m benchmarks.micro.layer_churn                 # in-memory, 2000
    .venv/bin/python -m benchmarks.micro.layer_churn --redis redis://127.0.0.1:6379/0

With ``--expire`` the layer's (fake) clock is moved one ``expiry`` forward before counting:
released channels are remembered that long to discard messages still in flight to them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import tracemalloc
from typing import Any

ALIAS = "churn"
ROOM = "churn-room"


def count_objects() -> dict[str, int]:
    gc.collect()
    found = {"Mailbox": 0, "Future": 0, "deque": 0}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in found:
            found[name] += 1
        elif isinstance(obj, asyncio.Future):
            found["Future"] += 1
    return found


async def run(count: int, redis_url: str | None, expire: bool) -> None:
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.layers import InMemoryChannelLayer, channel_layers
    from channels.testing import WebsocketCommunicator

    class Chat(AsyncWebsocketConsumer):
        channel_layer_alias = ALIAS

        async def connect(self) -> None:
            await self.channel_layer.group_add(ROOM, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(ROOM, self.channel_name)

        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            await self.channel_layer.group_send(ROOM, {"type": "chat.message", "text": text_data})

        async def chat_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    now = [time.time()]
    layer: Any
    if redis_url is None:
        layer = InMemoryChannelLayer(clock=lambda: now[0])
    else:
        from channels.layers.redis import RedisChannelLayer

        layer = RedisChannelLayer(hosts=[redis_url], clock=lambda: now[0])
    channel_layers.set(ALIAS, layer)

    async def churn(n: int) -> None:
        for _ in range(n):
            comm = WebsocketCommunicator(Chat.as_asgi(), "/")
            await comm.connect()
            await comm.send_to(text_data="x")
            await comm.receive_from()
            await comm.disconnect()
        if expire:
            now[0] += layer.expiry + 1
            await layer.new_channel()  # any operation sweeps

    await churn(200)  # warm-up
    tracemalloc.start()
    before_objects, before = count_objects(), tracemalloc.take_snapshot()
    await churn(count)
    after_objects, after = count_objects(), tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    objects = {k: after_objects[k] - before_objects[k] for k in before_objects}
    print(
        f"{count} closed connections: objects left {objects}; traced memory "
        f"{grown:+d} B ({grown / count:+.1f} B per closed connection)"
    )
    await layer.flush()
    await layer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--redis", metavar="URL", help="use RedisChannelLayer on this server")
    parser.add_argument("--expire", action="store_true", help="let one expiry pass first")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_project.settings")
    import django

    django.setup()
    asyncio.run(run(args.count, args.redis, args.expire))


if __name__ == "__main__":
    main()
