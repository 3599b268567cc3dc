"""TLS with the stdlib ssl module: a self-signed certificate made in the test, a real client."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest

from server.config import Config
from server.runtime import Server, StartupError, create_ssl_context
from tests.server.apps import basic
from tests.server.apps.proc import ServerProcess
from tests.support.certs import make_self_signed

WAIT = 10.0


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize("password", [None, "s3cret"])
async def test_https_request(tmp_path: Path, password: str | None) -> None:
    cert, key = make_self_signed(tmp_path, password.encode() if password else None)
    config = Config(
        app=basic.app,
        port=0,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_keyfile_password=password,
    )
    server = Server(config)
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.started.wait(), WAIT)
    port = server.bound_addresses[0][1]
    try:
        async with httpx.AsyncClient(verify=client_context(cert)) as client:
            r = await client.get(f"https://127.0.0.1:{port}/secure")
        assert r.status_code == 200
        assert r.text == "ok /secure"
        # Plain HTTP to the TLS port does not get an application response.
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{port}/secure")
    finally:
        server.shutdown()
        await asyncio.wait_for(task, WAIT)


def test_wrong_key_password(tmp_path: Path) -> None:
    cert, key = make_self_signed(tmp_path, b"right")
    config = Config(
        app=basic.app, ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_keyfile_password="wrong"
    )
    with pytest.raises(StartupError, match="cannot load TLS certificate") as info:
        create_ssl_context(config)
    assert info.value.exit_code == 2


def test_key_that_does_not_match(tmp_path: Path) -> None:
    cert, _ = make_self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, key = make_self_signed(other)
    with pytest.raises(StartupError, match="cannot load TLS certificate"):
        create_ssl_context(Config(app=basic.app, ssl_certfile=str(cert), ssl_keyfile=str(key)))


@pytest.mark.slow
def test_cli_serves_https(tmp_path: Path) -> None:
    cert, key = make_self_signed(tmp_path)
    proc = ServerProcess(
        [
            "tests.server.apps.basic:app",
            "--port",
            "0",
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
        ]
    )
    try:
        base = proc.wait_listening()
        assert base.startswith("https://")
        r = httpx.get(base + "/cli", verify=client_context(cert))
        assert r.text == "ok /cli"
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()
