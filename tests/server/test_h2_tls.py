"""HTTP/2 over TLS: ALPN picks h2 or http/1.1 on the same port; --no-http2 offers only
http/1.1.  A real ``Server`` (the runtime's TLS context) and real clients."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.config import Config
from server.runtime import Server
from tests.server.apps import h2app
from tests.support.certs import make_self_signed
from tests.support.h2client import H2Client

WAIT = 10.0


@pytest.fixture
async def tls_server(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[int, Path]]:
    cert, key = make_self_signed(tmp_path)
    options: dict[str, Any] = getattr(request, "param", {})
    config = Config(
        app=h2app.app,
        port=0,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        lifespan="off",
        access_log=False,
        **options,
    )
    server = Server(config)
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.started.wait(), WAIT)
    try:
        yield server.bound_addresses[0][1], cert
    finally:
        server.shutdown()
        await asyncio.wait_for(task, WAIT)


def _context(cert: Path, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.set_alpn_protocols(alpn)
    return ctx


async def test_alpn_h2(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    ctx = _context(cert, ["h2", "http/1.1"])
    async with H2Client.connect(port, ssl_context=ctx) as client:
        ssl_object = client.writer.get_extra_info("ssl_object")
        assert ssl_object.selected_alpn_protocol() == "h2"
        sid = client.request("GET", "/scope", scheme="https")
        response = await client.response(sid)
        assert response.status == 200
        assert b'"http_version": "2"' in response.body
        assert b'"scheme": "https"' in response.body


async def test_httpx_over_tls_negotiates_h2_and_http11(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    url = f"https://127.0.0.1:{port}/scope"
    async with httpx.AsyncClient(verify=_context(cert, []), http2=True) as client:
        r = await client.get(url)
        assert r.http_version == "HTTP/2"
        assert r.json()["http_version"] == "2"
    async with httpx.AsyncClient(verify=_context(cert, [])) as client:
        r = await client.get(url)
        assert r.http_version == "HTTP/1.1"
        assert r.json()["http_version"] == "1.1"


@pytest.mark.parametrize("tls_server", [{"http2": False}], indirect=True)
async def test_no_http2_offers_only_http11(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    async with httpx.AsyncClient(verify=_context(cert, []), http2=True) as client:
        r = await client.get(f"https://127.0.0.1:{port}/scope")
        assert r.http_version == "HTTP/1.1"
