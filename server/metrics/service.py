"""Metrics for one server process: what ``server.runtime.Server`` starts and stops.

Order matters: :func:`MetricsService.create` runs before the application is imported, so
``prometheus_client`` is already loaded when ``channels.layers`` builds its first layer and
registers the layer collector next to ours.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from server.config import Config
from server.metrics import multiprocess, require_prometheus_client
from server.metrics import recorder as _recorder
from server.metrics.exposition import (
    MetricsEndpoint,
    MetricsPathMiddleware,
    MetricsPortApp,
    render,
)
from server.metrics.loop_lag import LoopLagMonitor
from server.metrics.recorder import Recorder
from server.state import ServerState
from server.types import ASGIApp

logger = logging.getLogger("server.error")

_registered = False


def _register_collector() -> None:
    global _registered
    if _registered:
        return
    from prometheus_client import REGISTRY

    from server.metrics.collector import ServerCollector

    REGISTRY.register(ServerCollector())
    _registered = True


class MetricsService:
    def __init__(self, config: Config, state: ServerState | None = None) -> None:
        """``state``: the server's, whose connections are the ``connections_open`` gauge."""
        require_prometheus_client()
        self.config = config
        self.recorder = Recorder(state)
        _recorder.active = self.recorder
        _register_collector()
        self.multiprocess = multiprocess.enabled()
        self.mirror = multiprocess.Mirror() if self.multiprocess else None
        self.endpoint = MetricsEndpoint(self.produce)
        self._servers: list[asyncio.Server] = []
        self._lag: LoopLagMonitor | None = None
        self._mirror_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def produce(self) -> tuple[bytes, str]:
        if self.mirror is not None:
            self.mirror.sync()  # this worker's latest values; the others' are <= 1 s old
        return render(self.multiprocess)

    # --- the main listener ------------------------------------------------------------------
    def wrap_app(self, app: ASGIApp) -> ASGIApp:
        """``--metrics-path`` only: the app as seen from the main listener.  (Counting needs
        no wrapper: the protocols record into the active recorder themselves.)"""
        path = self.config.metrics_path
        return app if path is None else MetricsPathMiddleware(app, path, self.endpoint)

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(
        self, loop: asyncio.AbstractEventLoop, sockets: list[socket.socket] | None
    ) -> None:
        """Start the lag monitor, the mirror timer and the ``--metrics-port`` listener
        (on ``sockets`` when the supervisor bound it, else bound here)."""
        from server.protocols.http import HttpProtocol
        from server.sockets import bind_metrics_socket, describe_address

        self._loop = loop
        self._lag = LoopLagMonitor(loop, self.recorder)
        if self.mirror is not None:
            self._schedule_mirror()
        if self.config.metrics_port is None:
            return
        socks = sockets if sockets is not None else [bind_metrics_socket(self.config)]
        # The metrics listener gets its own state (not counted by --limit-concurrency, the
        # graceful drain or connections_open) and no access log.  Its config has metrics off:
        # scrapes are not client traffic, so its connections record nothing.
        config = self.config.replace(
            access_log=False,
            limit_concurrency=None,
            health_check_path=None,
            metrics_path=None,
            metrics_port=None,
        )
        app = MetricsPortApp(self.endpoint)
        state = ServerState()

        def factory() -> asyncio.Protocol:
            return HttpProtocol(config, app, state, loop)

        for sock in socks:
            self._servers.append(await loop.create_server(factory, sock=sock))
            logger.info("Metrics on %s/metrics", describe_address(sock, False))

    def _schedule_mirror(self) -> None:
        assert self._loop is not None
        self._mirror_handle = self._loop.call_later(multiprocess.MIRROR_INTERVAL, self._tick)

    def _tick(self) -> None:
        assert self.mirror is not None
        try:
            self.mirror.sync()
        except Exception:  # a layer's statistics() failing must not stop the timer
            logger.exception("Could not write metrics for other workers")
        self._schedule_mirror()

    def stop(self) -> None:
        for srv in self._servers:
            srv.close()
        self._servers.clear()
        if self._lag is not None:
            self._lag.stop()
        if self._mirror_handle is not None:
            self._mirror_handle.cancel()
            self._mirror_handle = None
        if self.mirror is not None:
            self.mirror.sync()  # this worker's final counts stay in the sum after it exits
        if _recorder.active is self.recorder:
            _recorder.active = None
