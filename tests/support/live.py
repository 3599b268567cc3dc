"""A real server on 127.0.0.1 with a free port, for integration tests.

    async with serve(app, timeout_keep_alive=0.5) as srv:
        async with httpx.AsyncClient() as client:
            r = await client.get(srv.url + "/path")

It binds port 0 (the kernel picks a free port, so parallel test runs never collide), builds one
``HttpProtocol`` per connection, and on exit closes the listener, asks every live connection to
shut down gracefully and waits (bounded) until they are all gone.  The API (``serve``, ``.host``,
``.port``, ``.state``, ``.url``, ``.config``, ``.ws_url``) is relied upon by other test suites;
keep it stable.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from server.config import Config
from server.state import ServerState
from server.types import ASGIApp


@dataclass
class LiveServer:
    host: str
    port: int
    state: ServerState
    config: Config
    server: asyncio.Server

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp, *, shutdown_timeout: float = 5.0, **config_options: Any
) -> AsyncIterator[LiveServer]:
    """Serve ``app`` on 127.0.0.1:<free port> for the duration of the ``async with`` block."""
    # Imported here so that collecting tests that use this helper never depends on import order.
    from server.protocols.http import HttpProtocol

    config = Config(app=app, host="127.0.0.1", port=0, **config_options)
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(config, app, state, loop), "127.0.0.1", 0, family=socket.AF_INET
    )
    port = server.sockets[0].getsockname()[1]
    live = LiveServer(host="127.0.0.1", port=port, state=state, config=config, server=server)
    try:
        yield live
    finally:
        server.close()
        state.shutting_down = True
        for conn in list(state.connections):
            conn.shutdown()
        try:
            await asyncio.wait_for(state.wait_idle(), shutdown_timeout)
        except TimeoutError:
            # Anything still open after the grace period is cut off, as the real runtime does.
            for conn in list(state.connections):
                abort = getattr(conn, "abort", None)
                if abort is not None:
                    abort()
        # The connections are gone, but their application tasks may still be handling the
        # disconnect they were just given: let them finish (bounded) before cancelling.
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=shutdown_timeout)
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=shutdown_timeout)
        # Python 3.12+ waits here for every connection to end; bounded like the rest.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), shutdown_timeout)


@contextlib.asynccontextmanager
async def connect(
    srv: LiveServer,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A raw client connection to ``srv`` (for bytes no real client would send)."""
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
