"""--header: added to every response the server writes (app responses, its own, handshakes)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from server.config import Config
from tests.server.apps.proc import ServerProcess
from tests.support.live import serve

HEADERS = ("X-Frame-Options: DENY", "Strict-Transport-Security: max-age=63072000; preload")


async def app(scope: dict[str, object], receive: object, send: object) -> None:
    assert callable(send)
    if scope["type"] == "websocket":
        if scope["path"] == "/accept":
            await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})  # before accept: a 403 written by the server
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def check(headers: httpx.Headers) -> None:
    assert headers["x-frame-options"] == "DENY"
    assert headers["strict-transport-security"] == "max-age=63072000; preload"


async def test_on_app_responses_and_server_errors() -> None:
    async with (
        serve(app, headers=HEADERS, limit_request_line=100) as srv,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(srv.url + "/")
        check(response.headers)
        assert response.headers["server"] == "channels-server"
        too_long = await client.get(srv.url + "/" + "a" * 200)
        assert too_long.status_code == 414
        check(too_long.headers)


async def test_without_server_and_date_headers() -> None:
    async with (
        serve(app, headers=HEADERS, server_header=False, date_header=False) as srv,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(srv.url + "/")
    check(response.headers)
    assert "server" not in response.headers and "date" not in response.headers


async def test_on_websocket_denial() -> None:
    async with serve(app, headers=HEADERS) as srv:
        with socket.create_connection((srv.host, srv.port)) as raw:
            raw.sendall(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await asyncio.to_thread(raw.recv, 4096)
                assert chunk
                head += chunk
    assert head.startswith(b"HTTP/1.1 403 ")
    assert b"\r\nx-frame-options: DENY\r\n" in head


async def test_on_the_101() -> None:
    from websockets.asyncio.client import connect

    async with serve(app, headers=HEADERS) as srv, connect(srv.ws_url + "/accept") as ws:
        assert ws.response is not None
        assert ws.response.status_code == 101
        assert ws.response.headers["X-Frame-Options"] == "DENY"
        assert ws.response.headers["Strict-Transport-Security"].endswith("preload")


async def own_server_app(scope: dict[str, object], receive: object, send: object) -> None:
    """Sets its own Server header, on the 101 and on an HTTP response."""
    assert callable(send)
    own = [(b"server", b"my-app/1.0")]
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept", "headers": own})
        await send({"type": "websocket.close"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": own})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_kept_when_the_app_sets_its_own_server_header() -> None:
    async with serve(own_server_app, headers=HEADERS) as srv, httpx.AsyncClient() as client:
        response = await client.get(srv.url + "/")
    check(response.headers)
    assert response.headers.get_list("server") == ["my-app/1.0"]


async def test_kept_on_the_101_when_the_app_sets_its_own_server_header() -> None:
    from websockets.asyncio.client import connect

    async with serve(own_server_app, headers=HEADERS) as srv, connect(srv.ws_url + "/") as ws:
        assert ws.response is not None
        assert ws.response.status_code == 101
        check(httpx.Headers(list(ws.response.headers.raw_items())))
        assert ws.response.headers.get_all("Server") == ["my-app/1.0"]


def test_header_lines_are_lowercase_names_and_stripped() -> None:
    assert Config(headers=(" X-A :  v ",)).header_lines == b"x-a: v\r\n"


@pytest.mark.slow
def test_from_an_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "server.env"
    env_file.write_text('CHANNELS_SERVER_HEADERS="X-Frame-Options: DENY\nX-From: env-file"\n')
    proc = ServerProcess(
        ["tests.server.apps.basic:app", "--port", "0", "--env-file", str(env_file)]
    )
    try:
        base = proc.wait_listening()
        response = httpx.get(base + "/")
        assert response.headers["x-from"] == "env-file"
        assert response.headers["x-frame-options"] == "DENY"
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()
