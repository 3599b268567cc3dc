"""ChannelsLiveServerTestCase serving the project with our server in a background thread."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from django.contrib.auth import get_user_model
from websockets.asyncio.client import connect

from channels.testing import ChannelsLiveServerTestCase


@pytest.mark.usefixtures("django_test_db")
class LiveProjectTests(ChannelsLiveServerTestCase):
    def test_urls(self) -> None:
        assert self.live_server_url.startswith("http://127.0.0.1:")
        assert self.live_server_ws_url == self.live_server_url.replace("http://", "ws://")

    def test_http_and_static_files(self) -> None:
        r = httpx.get(self.live_server_url + "/")
        assert r.status_code == 200 and r.text == "django say hi".replace("say", "says")
        # DEBUG project with staticfiles: the admin-free project still serves app static files.
        r = httpx.get(self.live_server_url + "/static/testapp/hello.txt")
        assert r.status_code == 200 and r.text.strip() == "static hello"

    def test_websocket_sees_the_test_database(self) -> None:
        get_user_model().objects.create_user("frank", password="pw")

        async def talk() -> str:
            async with connect(self.live_server_ws_url + "/ws/users/") as ws:
                await ws.send("count")
                reply = await ws.recv()
                assert isinstance(reply, str)
                return reply

        assert asyncio.run(talk()) == "1"

    def test_django_view_queries_the_test_database(self) -> None:
        # Django runs each request's sync code in a thread of its own: its connection to the
        # in-memory test database must be closed when the test is over (Python 3.13+ warns
        # about every sqlite3 connection that is garbage-collected unclosed).
        get_user_model().objects.create_user("grace", password="pw")
        r = httpx.get(self.live_server_url + "/login/", params={"u": "grace", "p": "pw"})
        assert r.status_code == 200 and r.text == "logged in"

    def test_database_is_emptied_between_tests(self) -> None:
        # Runs after (or before) the test creating "frank"; either way the table starts empty.
        assert get_user_model().objects.filter(username="frank").count() == 0


def test_live_server_startup_failure_is_reported() -> None:
    from channels.testing.live import LiveServerThread

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never served")

    # TEST-NET-3 address: never assigned to this machine, so binding fails at once.
    thread = LiveServerThread("203.0.113.7", app)
    thread.start()
    with pytest.raises(RuntimeError, match="Live server failed to start"):
        thread.wait_started(30)
    thread.join(30)
    assert not thread.is_alive()
