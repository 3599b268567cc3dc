"""The test project served by our server over real sockets (httpx + websockets clients)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from tests.support.live import LiveServer, serve


@pytest.fixture
async def live(db: None) -> AsyncIterator[LiveServer]:
    from tests.django_project.asgi import application

    async with serve(application, lifespan="off", access_log=False) as srv:
        yield srv


async def test_django_view_and_http_consumer(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        r = await client.get("/")
        assert r.status_code == 200 and r.text == "django says hi"
        r = await client.post("/consumer/", content=b"shout")
        assert r.status_code == 200 and r.text == "POST SHOUT"
        assert r.headers["content-type"] == "text/plain"


async def test_sync_and_async_echo(live: LiveServer) -> None:
    for route in ("/ws/echo/", "/ws/aecho/"):
        async with connect(live.ws_url + route) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"


async def test_consumer_close_code_reaches_the_client(live: LiveServer) -> None:
    async with connect(live.ws_url + "/ws/echo/") as ws:
        await ws.send("close")
        await ws.wait_closed()
        assert ws.close_code == 4001 and ws.close_reason == "asked to"


async def test_nested_router_over_the_wire(live: LiveServer) -> None:
    async with connect(live.ws_url + "/ws/items/17/") as ws:
        await ws.send("route")
        assert json.loads(await ws.recv()) == {"args": [], "kwargs": {"item_id": 17}}
    async with connect(live.ws_url + "/ws/items/abc/") as ws:
        await ws.send("route")
        assert json.loads(await ws.recv()) == {"args": [], "kwargs": {"slug": "abc"}}


async def test_group_broadcast_between_clients(live: LiveServer) -> None:
    async with (
        connect(live.ws_url + "/ws/chat/lobby/") as a,
        connect(live.ws_url + "/ws/chat/lobby/") as b,
        connect(live.ws_url + "/ws/chat/other/") as c,
    ):
        await a.send(json.dumps({"text": "hi all"}))
        for ws in (a, b):
            assert json.loads(await ws.recv())["text"] == "hi all"
        # The other room got nothing: its next message is its own.
        await c.send(json.dumps({"text": "other room"}))
        assert json.loads(await c.recv())["text"] == "other room"


async def test_origin_validation_over_the_wire(live: LiveServer) -> None:
    async with connect(live.ws_url + "/ws/guarded/", origin="http://testserver") as ws:  # type: ignore[arg-type]
        await ws.send("ok")
        assert await ws.recv() == "ok"
    with pytest.raises(InvalidStatus) as info:
        async with connect(live.ws_url + "/ws/guarded/", origin="http://evil.com"):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403


async def test_session_and_auth_over_the_wire(live: LiveServer) -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    await sync_to_async(get_user_model().objects.create_user)("dora", password="pw")
    async with httpx.AsyncClient(base_url=live.url) as client:
        r = await client.get("/login/", params={"u": "dora", "p": "pw"})
        assert r.status_code == 200
        session_id = client.cookies["sessionid"]
    headers = {"Cookie": f"sessionid={session_id}"}
    async with connect(live.ws_url + "/ws/whoami/", additional_headers=headers) as ws:
        assert json.loads(await ws.recv()) == {"user": "dora", "visits": 1}
    async with connect(live.ws_url + "/ws/whoami/") as ws:
        assert json.loads(await ws.recv()) == {"user": None, "visits": 1}


async def test_async_consumer_uses_the_database(live: LiveServer) -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    await sync_to_async(get_user_model().objects.create_user)("eve", password="pw")
    async with connect(live.ws_url + "/ws/users/") as ws:
        await ws.send("count")
        assert await ws.recv() == "1"


class Probe(AsyncConsumer):
    """Reports whether the server's receive is armable and counts tasks while messages flow."""

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.armable = callable(getattr(self.receive_ref, "arm", None))
        await self.send({"type": "websocket.accept"})
        await self.send({"type": "websocket.send", "text": self.channel_name})

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        reply = {"armable": self.armable, "tasks": len(asyncio.all_tasks())}
        await self.send({"type": "websocket.send", "text": json.dumps(reply)})

    async def layer_ping(self, message: dict[str, Any]) -> None:
        await self.send({"type": "websocket.send", "text": "layer:" + message["n"]})

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        raise StopConsumer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.receive_ref = receive
        await super().__call__(scope, receive, send)


async def test_direct_feed_with_our_server_and_the_in_memory_layer() -> None:
    async with (
        serve(Probe.as_asgi(), lifespan="off", access_log=False) as srv,
        connect(srv.ws_url + "/") as ws,
    ):
        channel = await ws.recv()
        assert isinstance(channel, str)
        layer = get_channel_layer()
        seen_tasks = set()
        for n in range(20):
            await ws.send("probe")
            await layer.send(channel, {"type": "layer.ping", "n": str(n)})
            replies = [await ws.recv(), await ws.recv()]
            probe = json.loads(next(r for r in replies if str(r).startswith("{")))
            assert probe["armable"] is True
            seen_tasks.add(probe["tasks"])
            assert f"layer:{n}" in replies
        # Task count stays flat: no task per message, no pump for armable sources.
        assert len(seen_tasks) == 1


class Ticker(AsyncHttpConsumer):
    """Server-sent events fed from the channel layer; ``handle`` returns right after headers."""

    disconnected: asyncio.Event | None = None

    async def handle(self, body: bytes) -> None:
        await self.send_headers(headers=[(b"content-type", b"text/event-stream")])
        await self.channel_layer.group_add("tickers", self.channel_name)
        await self.send_body(b"data: ready\n\n", more_body=True)

    async def tick(self, message: dict[str, Any]) -> None:
        await self.send_body(f"data: {message['n']}\n\n".encode(), more_body=True)

    async def http_request(self, message: dict[str, Any]) -> None:
        # Unlike the base class, stay alive after handle() to keep streaming events.
        if not message.get("more_body"):
            await self.handle(b"")

    async def disconnect(self) -> None:
        await self.channel_layer.group_discard("tickers", self.channel_name)
        assert self.disconnected is not None
        self.disconnected.set()


async def test_streaming_http_consumer_fed_by_the_layer_until_client_leaves() -> None:
    disconnected = asyncio.Event()
    app = Ticker.as_asgi(disconnected=disconnected)
    async with serve(app, lifespan="off", access_log=False) as srv:
        async with (
            httpx.AsyncClient() as client,
            client.stream("GET", srv.url + "/events") as response,
        ):
            lines = response.aiter_lines()
            assert await anext(lines) == "data: ready"
            layer = get_channel_layer()
            for n in range(3):
                await layer.group_send("tickers", {"type": "tick", "n": n})
                assert await anext(lines) == ""
                assert await anext(lines) == f"data: {n}"
        # The client went away: the server delivered http.disconnect and the consumer cleaned
        # up, while the server keeps running (waiting after leaving serve() would race its
        # shutdown, which cancels application tasks once the connections are gone).
        await asyncio.wait_for(disconnected.wait(), 10)
        assert layer.statistics().groups == 0


class Goodbye(AsyncWebsocketConsumer):
    codes: list[int] | None = None

    async def disconnect(self, code: int) -> None:
        assert self.codes is not None
        self.codes.append(code)


async def test_server_shutdown_reaches_consumer_disconnect() -> None:
    codes: list[int] = []
    async with serve(Goodbye.as_asgi(codes=codes), lifespan="off", access_log=False) as srv:
        ws = await connect(srv.ws_url + "/")
    # Leaving serve() shut the server down gracefully: close 1001 to the client, and
    # websocket.disconnect to the consumer, whose groups were left.
    await ws.wait_closed()
    assert ws.close_code == 1001
    assert codes == [1001]
