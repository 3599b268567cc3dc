"""``Server`` in-process: binding (TCP, UDS, fd), lifespan state, graceful shutdown, limits."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.config import Config
from server.runtime import Server, StartupError, bind_sockets
from server.types import Receive, Scope, Send
from tests.server.apps import basic

WAIT = 10.0


async def start(config: Config) -> tuple[Server, asyncio.Task[None]]:
    server = Server(config)
    task = asyncio.create_task(server.serve())
    started = asyncio.create_task(server.started.wait())
    done, _ = await asyncio.wait({task, started}, timeout=WAIT, return_when="FIRST_COMPLETED")
    if task in done:
        started.cancel()
        task.result()  # re-raise the startup error
        raise AssertionError("server stopped before starting")
    assert started in done, "server did not start in time"
    return server, task


async def stop(server: Server, task: asyncio.Task[None]) -> None:
    server.shutdown()
    await asyncio.wait_for(task, WAIT)


def url(server: Server) -> str:
    host, port = server.bound_addresses[0][:2]
    return f"http://{host}:{port}"


@pytest.fixture
async def running() -> AsyncIterator[Server]:
    server, task = await start(Config(app=basic.app, port=0, lifespan="on"))
    yield server
    await stop(server, task)


async def test_serves_and_shares_lifespan_state(running: Server) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(url(running) + "/state")
    assert r.status_code == 200
    assert r.text == "hello from lifespan"
    assert running.bound_addresses[0][1] != 0


async def test_lifespan_runs_around_serving() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await basic.app(scope, receive, send)

    server, task = await start(Config(app=app, port=0))
    assert events == ["lifespan.startup"]
    await stop(server, task)
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert server.exit_code == 0


async def test_startup_failure_raises_and_unbinds(free_port: int) -> None:
    server = Server(Config(app=basic.startup_fails, port=free_port))
    with pytest.raises(StartupError, match="database unreachable") as info:
        await asyncio.wait_for(server.serve(), WAIT)
    assert info.value.exit_code == 3
    with socket.create_server(("127.0.0.1", free_port)):
        pass  # the port was released


async def test_graceful_shutdown_finishes_in_flight_response() -> None:
    release = asyncio.Event()
    first_chunk_sent = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("no lifespan")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"begin;", "more_body": True})
        first_chunk_sent.set()
        await release.wait()
        await send({"type": "http.response.body", "body": b"end"})

    server, task = await start(Config(app=app, port=0))
    base = url(server)
    async with httpx.AsyncClient() as client:
        request = asyncio.create_task(client.get(base + "/"))
        await asyncio.wait_for(first_chunk_sent.wait(), WAIT)
        server.shutdown()
        # Shutting down: the listener is closed, new connections are refused.
        # No event marks "listener closed"; a few loop iterations get there (bounded).
        for _ in range(1000):
            if server.state.shutting_down:
                break
            await asyncio.sleep(0)
        assert server.state.shutting_down
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as other:
                await other.get(base + "/")
        assert not task.done()
        release.set()
        response = await asyncio.wait_for(request, WAIT)
    assert response.text == "begin;end"
    await asyncio.wait_for(task, WAIT)
    assert server.exit_code == 0


async def test_graceful_timeout_cuts_off_stuck_requests() -> None:
    never = asyncio.Event()
    cancelled = asyncio.Event()
    entered = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("no lifespan")
        entered.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server, task = await start(Config(app=app, port=0, timeout_graceful_shutdown=0.2))
    async with httpx.AsyncClient() as client:
        request = asyncio.create_task(client.get(url(server) + "/"))
        await asyncio.wait_for(entered.wait(), WAIT)
        server.shutdown()
        await asyncio.wait_for(task, WAIT)
        assert cancelled.is_set()
        with pytest.raises(httpx.HTTPError):
            await asyncio.wait_for(request, WAIT)


async def test_force_exit_skips_the_grace_period() -> None:
    entered = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("no lifespan")
        entered.set()
        await asyncio.Event().wait()

    server, task = await start(Config(app=app, port=0, timeout_graceful_shutdown=60))
    async with httpx.AsyncClient() as client:
        request = asyncio.create_task(client.get(url(server) + "/"))
        await asyncio.wait_for(entered.wait(), WAIT)
        server.shutdown()
        server.force_exit = True
        await asyncio.wait_for(task, WAIT)
        assert server.exit_code == 1
        with pytest.raises(httpx.HTTPError):
            await asyncio.wait_for(request, WAIT)


async def test_limit_max_requests_stops_the_server() -> None:
    server, task = await start(Config(app=basic.app, port=0, limit_max_requests=3))
    async with httpx.AsyncClient() as client:
        for _ in range(3):
            assert (await client.get(url(server) + "/pid")).status_code == 200
    await asyncio.wait_for(task, WAIT)  # stops by itself within one tick
    assert server.exit_code == 0


async def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "srv.sock")
    # A stale socket file from a dead server is replaced.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    server, task = await start(Config(app=basic.app, uds=path))
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666)
    transport = httpx.AsyncHTTPTransport(uds=path)
    async with httpx.AsyncClient(transport=transport) as client:
        r = await client.get("http://localhost/hello")
    assert r.text == "ok /hello"
    # A second server on the same live socket is refused, not allowed to steal it.
    with pytest.raises(StartupError, match="address already in use"):
        bind_sockets(Config(app=basic.app, uds=path))
    await stop(server, task)
    assert not (tmp_path / "srv.sock").exists()


async def test_inherited_fd() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    fd = os.dup(sock.fileno())
    sock.close()
    server, task = await start(Config(app=basic.app, fd=fd))
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{port}/fd")
    assert r.text == "ok /fd"
    await stop(server, task)


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    server, task = await start(Config(app=basic.app, host="::1", port=0))
    port = server.bound_addresses[0][1]
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://[::1]:{port}/six")
    assert r.text == "ok /six"
    await stop(server, task)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_run_in_a_thread_and_stop_from_another(loop: str) -> None:
    """The way live-server test cases embed it: ``run()`` in a thread, ``shutdown()`` outside."""
    server = Server(Config(app=basic.app, port=0, lifespan="off", loop=loop))  # type: ignore[arg-type]
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(server.run()))
    thread.start()
    try:
        assert server.started.wait_sync(WAIT)
        r = httpx.get(url(server) + "/thread")
        assert r.text == "ok /thread"
    finally:
        server.shutdown()
        thread.join(WAIT)
    assert codes == [0]


async def test_shutdown_before_serve_returns_promptly() -> None:
    server = Server(Config(app=basic.app, port=0))
    server.shutdown()
    await asyncio.wait_for(server.serve(), WAIT)
    assert not server.started.is_set()


async def test_asgi_app_exceptions_do_not_stop_the_server() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("no lifespan")
        calls.append(scope["path"])
        raise RuntimeError("boom")

    server, task = await start(Config(app=app, port=0))
    async with httpx.AsyncClient() as client:
        r = await client.get(url(server) + "/x")
    assert r.status_code == 500
    assert not task.done()
    await stop(server, task)


async def test_graceful_shutdown_closes_websockets_with_1001() -> None:
    import websockets

    disconnected: list[int] = []
    accepted = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError("websocket only")
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        accepted.set()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                disconnected.append(message["code"])
                return

    server, task = await start(Config(app=app, port=0, ws_ping_interval=None))
    host, port = server.bound_addresses[0][:2]
    async with websockets.connect(f"ws://{host}:{port}/ws") as ws:
        await asyncio.wait_for(accepted.wait(), WAIT)
        server.shutdown()
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1001
    await asyncio.wait_for(task, WAIT)
    assert disconnected == [1001]


async def test_graceful_shutdown_lets_apps_finish_their_disconnect_handling() -> None:
    """A consumer still cleaning up after its disconnect (leaving groups) is not cancelled."""
    import websockets

    accepted = asyncio.Event()
    cleanup_started = asyncio.Event()
    release_cleanup = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError("websocket only")
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        accepted.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass
        cleanup_started.set()
        try:
            await release_cleanup.wait()  # e.g. a group_discard round trip to Redis
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    server, task = await start(Config(app=app, port=0, ws_ping_interval=None))
    host, port = server.bound_addresses[0][:2]
    async with websockets.connect(f"ws://{host}:{port}/ws") as ws:
        await asyncio.wait_for(accepted.wait(), WAIT)
        server.shutdown()
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), WAIT)
    await asyncio.wait_for(cleanup_started.wait(), WAIT)
    # The connection is gone; the server must still be waiting for the app, not cancelling it.
    assert not task.done()
    release_cleanup.set()
    await asyncio.wait_for(task, WAIT)
    assert outcome == ["finished"]
