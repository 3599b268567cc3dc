"""``ChannelsLiveServerTestCase``: a real server (ours) on a free port for browser-style tests.

Each test gets the project's ASGI application (``settings.ASGI_APPLICATION``) served by
``server.runtime.Server`` in a background thread on 127.0.0.1, port 0.  Running in a thread
(rather than a subprocess) means the server sees the test database, including SQLite's shared
in-memory test database.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import ImproperlyConfigured
from django.test import TransactionTestCase
from django.test.utils import modify_settings

from ..routing import get_default_application
from .connections import ThreadConnections

# Seconds to wait for the server thread to bind; only reached when startup hangs.
STARTUP_TIMEOUT = 30.0


def make_application(*, static_wrapper: Any = None) -> Any:
    application = get_default_application()
    if static_wrapper is not None:
        application = static_wrapper(application)
    return application


class LiveServerThread(threading.Thread):
    """Runs ``Server.run()`` (its own event loop) and reports the bound port or the failure."""

    def __init__(self, host: str, application: Any, **options: Any) -> None:
        super().__init__(name="channels-live-server", daemon=True)
        from server.config import Config
        from server.runtime import Server

        settings_: dict[str, Any] = {
            "lifespan": "off",
            "access_log": False,
            "log_level": "warning",
            "timeout_graceful_shutdown": 5.0,
        }
        settings_.update(options)
        config = Config(app=application, host=host, port=0, **settings_)
        self.server = Server(config, application)
        self.error: BaseException | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        from server.runtime import loop_factory

        async def serve_and_report() -> None:
            serving = asyncio.ensure_future(self.server.serve())
            started = asyncio.ensure_future(self.server.started.wait())
            await asyncio.wait({serving, started}, return_when=asyncio.FIRST_COMPLETED)
            self.ready.set()
            started.cancel()
            await serving

        try:
            with asyncio.Runner(loop_factory=loop_factory(self.server.config.loop)) as runner:
                runner.run(serve_and_report())
        except BaseException as exc:  # reported to the test thread, never swallowed
            self.error = exc
        finally:
            self.ready.set()

    def wait_started(self, timeout: float) -> int:
        """The bound port, once listening; raises with the cause if startup failed."""
        self.ready.wait(timeout)
        if not self.server.started.is_set():
            raise RuntimeError(f"Live server failed to start: {self.error!r}") from self.error
        port: int = self.server.bound_addresses[0][1]
        return port

    def stop(self) -> None:
        self.server.shutdown()
        self.join(STARTUP_TIMEOUT)


class ChannelsLiveServerTestCase(TransactionTestCase):
    """Like Django's ``LiveServerTestCase`` but serving ASGI (HTTP and WebSocket)."""

    host = "127.0.0.1"
    static_wrapper: Any = ASGIStaticFilesHandler
    serve_static = True
    # Extra ``server.config.Config`` options for the live server (e.g. {"loop": "asyncio"}).
    server_options: dict[str, Any] = {}

    _port: int
    _server_thread: LiveServerThread
    _live_server_modified_settings: modify_settings
    _thread_connections: ThreadConnections

    @property
    def live_server_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def live_server_ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    @classmethod
    def setUpClass(cls) -> None:
        # One server per test class (like Django's LiveServerTestCase); TransactionTestCase
        # empties the database between tests, and the server sees every change at once.
        super().setUpClass()
        if not getattr(settings, "ASGI_APPLICATION", None):
            raise ImproperlyConfigured("ChannelsLiveServerTestCase needs settings.ASGI_APPLICATION")
        cls._live_server_modified_settings = modify_settings(ALLOWED_HOSTS={"append": cls.host})
        cls._live_server_modified_settings.enable()
        cls.addClassCleanup(cls._live_server_modified_settings.disable)
        # Registered before the server's cleanup so that it runs after the server stopped.
        cls._thread_connections = ThreadConnections()
        cls._thread_connections.start()
        cls.addClassCleanup(cls._thread_connections.stop)
        wrapper = cls.static_wrapper if cls.serve_static else None
        cls._server_thread = LiveServerThread(
            cls.host, make_application(static_wrapper=wrapper), **cls.server_options
        )
        cls._server_thread.start()
        cls.addClassCleanup(cls._server_thread.stop)
        cls._port = cls._server_thread.wait_started(STARTUP_TIMEOUT)

    def _post_teardown(self) -> None:
        # The connections the server's request threads opened during this test (see
        # ``channels.testing.connections``); the next test's requests open their own.
        try:
            super()._post_teardown()  # type: ignore[misc]
        finally:
            self._thread_connections.close()
