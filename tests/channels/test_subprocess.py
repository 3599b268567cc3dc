"""End to end in real processes: ``python -m server`` on the test project, and ``manage.py
runserver`` (our override) serving HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0

pytestmark = pytest.mark.slow


def child_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.django_project.settings"
    env["CHANNELS_TEST_DB"] = str(tmp_path / "db.sqlite3")
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@asynccontextmanager
async def running(
    args: list[str], env: dict[str, str], ready_marker: str, **kwargs: object
) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[str]]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        **kwargs,  # type: ignore[arg-type]
    )
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            while True:
                line = (await proc.stdout.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("process exited before it was ready:\n" + "".join(output))
                output.append(line)
                if ready_marker in line:
                    break
        yield proc, output
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(15):
                    await proc.communicate()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def exercise(base: str) -> None:
    async with httpx.AsyncClient(base_url="http://" + base) as client:
        r = await client.get("/")
        assert r.status_code == 200 and r.text == "django says hi"
        r = await client.post("/consumer/", content=b"abc")
        assert r.text == "POST ABC"
    async with connect(f"ws://{base}/ws/aecho/") as ws:
        await ws.send("round trip")
        assert await ws.recv() == "round trip"
    async with (
        connect(f"ws://{base}/ws/chat/room1/") as a,
        connect(f"ws://{base}/ws/chat/room1/") as b,
    ):
        await b.send('{"text": "from b"}')
        for ws in (a, b):
            assert "from b" in str(await ws.recv())


async def test_python_m_server_serves_the_project(tmp_path: Path) -> None:
    # Hand the server an already-bound socket (--fd): no free-port race with parallel runs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        async with running(
            [
                "-m",
                "server",
                "tests.django_project.asgi:application",
                "--fd",
                str(sock.fileno()),
                "--lifespan",
                "off",
            ],
            child_env(tmp_path),
            "Listening on",
            pass_fds=[sock.fileno()],
        ) as _:
            await exercise(f"127.0.0.1:{port}")
    finally:
        sock.close()


async def test_runserver_serves_asgi(tmp_path: Path, free_port: int) -> None:
    env = child_env(tmp_path)
    env["CHANNELS_SERVER_SERVER_NAME"] = "runserver-under-test"  # server env vars apply
    async with running(
        ["-m", "django", "runserver", f"127.0.0.1:{free_port}", "--noreload", "--skip-checks"],
        env,
        "Starting ASGI/WebSocket development server at",
    ) as (proc, _output):
        await exercise(f"127.0.0.1:{free_port}")
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{free_port}/static/testapp/hello.txt")
            assert r.status_code == 200 and r.text.strip() == "static hello"
            assert r.headers["server"] == "runserver-under-test"
    assert proc.returncode == 0


async def test_runserver_without_asgi_application_falls_back_to_wsgi(
    tmp_path: Path, free_port: int
) -> None:
    settings_dir = tmp_path / "wsgi_only"
    settings_dir.mkdir()
    (settings_dir / "wsgi_only_settings.py").write_text(
        "from tests.django_project.settings import *  # noqa: F403\n"
        "del ASGI_APPLICATION\n"
        "WSGI_APPLICATION = None\n"
    )
    env = child_env(tmp_path)
    env["DJANGO_SETTINGS_MODULE"] = "wsgi_only_settings"
    env["PYTHONPATH"] = f"{settings_dir}{os.pathsep}{ROOT}"
    async with (
        running(
            ["-m", "django", "runserver", f"127.0.0.1:{free_port}", "--noreload", "--skip-checks"],
            env,
            # Django's own banner: "Starting development server at" up to 5.2, "Starting WSGI
            # development server at" from 6.0.
            "development server at",
        ),
        httpx.AsyncClient() as client,
    ):
        r = await client.get(f"http://127.0.0.1:{free_port}/")
        assert r.status_code == 200 and r.text == "django says hi"
        assert "WSGIServer" in r.headers.get("server", "")


async def test_runserver_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "django",
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
            "--skip-checks",
            cwd=ROOT,
            env=child_env(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(READY_TIMEOUT):
            _, err = await proc.communicate()
    assert proc.returncode == 1
    assert "address already in use" in err.decode()
    assert "Traceback" not in err.decode()
