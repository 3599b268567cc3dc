"""``ChannelsLiveServerTestCase`` used the way the Channels tutorial (part 4) uses it:
class-level setup/teardown overridden around ``super()``, ``serve_static``, the live URLs, a
browser-like Origin, and the test thread pushing through the channel layer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from websockets.sync.client import connect
from websockets.typing import Origin

from channels.layers import get_channel_layer
from channels.testing import ChannelsLiveServerTestCase


@pytest.mark.usefixtures("django_test_db")
class TutorialShapedLiveTests(ChannelsLiveServerTestCase):
    serve_static = True  # as the tutorial does, to emulate StaticLiveServerTestCase
    resources: list[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        try:
            cls.resources = ["driver"]  # where the tutorial starts its WebDriver
        except Exception:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.resources.clear()
        super().tearDownClass()

    def _ws(self, path: str) -> Any:
        # What a page served from live_server_url sends as Origin.
        return connect(
            self.live_server_ws_url + path, origin=Origin(self.live_server_url), open_timeout=5
        )

    def test_live_urls_and_static(self) -> None:
        assert self.live_server_ws_url == "ws://" + self.live_server_url.split("://", 1)[1]
        r = httpx.get(self.live_server_url + "/static/testapp/hello.txt", timeout=5)
        assert r.status_code == 200

    def test_origin_checked_page_socket(self) -> None:
        with self._ws("/ws/guarded/") as ws:
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"

    def test_test_thread_pushes_to_a_room(self) -> None:
        with self._ws("/ws/chat/live/") as a, self._ws("/ws/chat/live/") as b:
            a.send(json.dumps({"text": "from a"}))
            for ws in (a, b):
                assert json.loads(ws.recv(timeout=5))["text"] == "from a"
            # The test runs in another thread (and loop) than the live server.
            async_to_sync(get_channel_layer().group_send)(
                "chat_live", {"type": "chat.message", "text": "from the test", "pid": 0}
            )
            for ws in (a, b):
                assert json.loads(ws.recv(timeout=5)) == {"text": "from the test", "pid": 0}


@pytest.mark.usefixtures("django_test_db")
class LocalhostLiveTests(ChannelsLiveServerTestCase):
    host = "localhost"  # upstream's default; projects may pin it

    def test_serves_on_localhost(self) -> None:
        assert self.live_server_url.startswith("http://localhost:")
        r = httpx.get(self.live_server_url + "/", timeout=5)
        assert r.status_code == 200
        with connect(
            self.live_server_ws_url + "/ws/guarded/",
            origin=Origin(self.live_server_url),
            open_timeout=5,
        ) as ws:
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
