"""Channels 4.2: async consumers close old DB connections before handlers and after disconnect.

The sweep is skipped when it cannot close anything (no connection opened since the last one,
non-persistent connections); these tests watch the real sweep function being entered.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import TestCase

import channels.db
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import ApplicationCommunicator, WebsocketCommunicator


@pytest.fixture
def sweeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the threads the sweep ran in, in order."""
    calls: list[str] = []
    real = channels.db.close_old_connections

    def spy() -> None:
        calls.append(threading.current_thread().name)
        real()

    monkeypatch.setattr(channels.db, "close_old_connections", spy)
    monkeypatch.setattr(channels.db, "_opened_since_sweep", False)
    monkeypatch.setattr(channels.db, "_persistent", False)
    monkeypatch.setattr(channels.db, "_always_sweep", False)
    yield calls


class Recorder(AsyncConsumer):
    channel_layer_alias = None

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        await self.send({"type": "websocket.accept"})

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if message.get("text") == "open-db":
            # A real new connection: Django sends connection_created from connect().
            def open_and_close() -> None:
                conn = connections.create_connection("default")
                conn.ensure_connection()
                conn.close()

            await sync_to_async(open_and_close)()
        await self.send({"type": "websocket.send", "text": "ok"})

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        raise StopConsumer()


async def test_sweep_only_after_a_connection_was_opened(db: None, sweeps: list[str]) -> None:
    comm = WebsocketCommunicator(Recorder.as_asgi(), "/")
    assert (await comm.connect())[0]
    await comm.send_to(text_data="plain")
    assert await comm.receive_from() == "ok"
    assert sweeps == []  # nothing could be stale: no hop to the ORM thread
    await comm.send_to(text_data="open-db")
    assert await comm.receive_from() == "ok"
    assert sweeps == []
    await comm.send_to(text_data="plain")  # the next message sweeps first
    assert await comm.receive_from() == "ok"
    assert len(sweeps) == 1
    await comm.send_to(text_data="plain")
    assert await comm.receive_from() == "ok"
    assert len(sweeps) == 1
    await comm.disconnect()


async def test_persistent_connections_sweep_before_every_handler(
    db: None, sweeps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channels.db, "_persistent", True)
    monkeypatch.setattr(channels.db, "_always_sweep", True)
    comm = WebsocketCommunicator(Recorder.as_asgi(), "/")
    assert (await comm.connect())[0]  # before connect: 1
    for _ in range(3):
        await comm.send_to(text_data="plain")
        assert await comm.receive_from() == "ok"
    assert len(sweeps) == 4
    await comm.disconnect()


class TouchesDbOnDisconnect(AsyncWebsocketConsumer):
    channel_layer_alias = None

    async def disconnect(self, code: int) -> None:
        channels.db._opened_since_sweep = True  # as if disconnect() had queried


async def test_generic_consumer_sweeps_after_disconnect(db: None, sweeps: list[str]) -> None:
    comm = WebsocketCommunicator(TouchesDbOnDisconnect.as_asgi(), "/")
    assert (await comm.connect())[0]
    assert sweeps == []
    await comm.disconnect()
    assert len(sweeps) == 1


async def test_sync_consumers_unchanged(db: None, sweeps: list[str]) -> None:
    # SyncConsumer handlers already run inside database_sync_to_async (closing around them).
    from channels.consumer import SyncConsumer

    class Sync(SyncConsumer):
        channel_layer_alias = None

        def http_request(self, message: dict[str, Any]) -> None:
            self.send({"type": "http.response.start", "status": 204, "headers": []})
            self.send({"type": "http.response.body", "body": b""})
            raise StopConsumer()

    comm = ApplicationCommunicator(Sync.as_asgi(), {"type": "http", "method": "GET", "path": "/"})
    await comm.send_input({"type": "http.request", "body": b""})
    assert (await comm.receive_output())["status"] == 204
    await comm.receive_output()
    await comm.wait()
    assert len(sweeps) == 2  # before and after the handler, in its thread


async def test_http_consumer_sweeps_at_the_end_of_the_request(db: None, sweeps: list[str]) -> None:
    from channels.generic.http import AsyncHttpConsumer
    from channels.testing import HttpCommunicator

    class Page(AsyncHttpConsumer):
        channel_layer_alias = None

        async def handle(self, body: bytes) -> None:
            channels.db._opened_since_sweep = True  # as if handle() had queried
            await self.send_response(200, b"ok")

    response = await HttpCommunicator(Page.as_asgi(), "GET", "/").get_response()
    assert response["body"] == b"ok"
    assert len(sweeps) == 1


class _GroupCount(AsyncWebsocketConsumer):
    channel_layer_alias = None

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=str(await self.count()))

    @channels.db.database_sync_to_async
    def count(self) -> int:
        from django.contrib.auth.models import Group

        return Group.objects.count()


@pytest.mark.usefixtures("django_test_db")
class DjangoTestCaseStyle(TestCase):
    """The testing docs' pattern: an ``async def`` test in Django's ``TestCase``.  The test's
    transaction must survive the consumer's database work (Channels 4.2)."""

    async def test_consumer_sees_rows_of_the_test_transaction(self) -> None:
        from django.contrib.auth.models import Group

        await Group.objects.acreate(name="in-transaction")
        comm = WebsocketCommunicator(_GroupCount.as_asgi(), "/")
        connected, _ = await comm.connect()
        self.assertTrue(connected)
        self.assertEqual(await comm.receive_from(), "1")
        await comm.disconnect()
        # Still inside the same, still usable, transaction.
        self.assertEqual(await Group.objects.acount(), 1)
