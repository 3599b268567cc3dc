"""The Channels tutorial's project, unchanged, served by every entry point a user has.

``tests/e2e/tutorial/`` is copied to a temporary directory and started with nothing in the
environment (its ``asgi.py`` sets ``DJANGO_SETTINGS_MODULE`` itself): under ``python -m
server``, the ``daphne`` console script and ``manage.py runserver`` with the in-memory layer,
then with ``channels_redis.core.RedisChannelLayer`` on a real redis-server and ``--workers 2``.
Two rooms of chat clients (the ``websockets`` library) exchange messages; every message must
reach every client of its room and no other.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e import free_port, http_ok, log_tail, redis_server, stop_process, wait_until

pytestmark = pytest.mark.slow

TUTORIAL = Path(__file__).resolve().parent / "tutorial"
APP = "mysite.asgi:application"
WARNING = "so each worker has its own layer"
ROOMS = ("lobby", "garden")
CLIENTS_PER_ROOM = 3
MESSAGES_PER_CLIENT = 4
RECEIVE_TIMEOUT = 20.0  # bounds a lost message; a delivered one arrives in milliseconds


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the tutorial project (its db.sqlite3 is written there)."""
    target = tmp_path / "mysite-project"
    shutil.copytree(
        TUTORIAL, target, ignore=shutil.ignore_patterns("__pycache__", "README.md", "ruff.toml")
    )
    return target


def use_redis_layer(project: Path, redis_url: str) -> None:
    """Switch CHANNEL_LAYERS the way tutorial part 2 writes it for channels_redis."""
    url = urlparse(redis_url)
    with (project / "mysite" / "settings.py").open("a") as settings:
        settings.write(
            "\nCHANNEL_LAYERS = {\n"
            '    "default": {\n'
            '        "BACKEND": "channels_redis.core.RedisChannelLayer",\n'
            f'        "CONFIG": {{"hosts": [("{url.hostname}", {url.port})]}},\n'
            "    },\n"
            "}\n"
        )


def clean_env(**extra: str) -> dict[str, str]:
    """The user's shell: no DJANGO_SETTINGS_MODULE, nothing of ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CHANNELS_SERVER_")) and k not in ("PYTHONPATH",)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@contextmanager
def serving(
    project: Path, command: Sequence[str], port: int, *, workers: int = 0, **env: str
) -> Iterator[Path]:
    """Run ``command`` in the project directory until the block ends; yields its log file."""
    log = project / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(command), cwd=project, env=clean_env(**env), stdout=out, stderr=subprocess.STDOUT
        )

    def ready() -> bool:
        # With --workers, every worker must be up, or all clients would land on the first one.
        return http_ok(f"http://127.0.0.1:{port}/chat/") and ready_workers(log) >= workers

    try:
        wait_until(ready, proc, log, " ".join(command))
        yield log
    finally:
        stop_process(proc)


def ready_workers(log: Path) -> int:
    return sum("Worker [" in line and "] ready" in line for line in log.read_text().splitlines())


async def chat_in_two_rooms(port: int) -> None:
    """Every client sends; every client of a room receives all of that room's messages."""
    # The page the tutorial's JavaScript runs on: AllowedHostsOriginValidator checks it.
    origin: Any = f"http://127.0.0.1:{port}"
    async with AsyncExitStack() as stack:
        clients: dict[str, list[ClientConnection]] = {}
        for room in ROOMS:
            clients[room] = [
                await stack.enter_async_context(
                    connect(f"ws://127.0.0.1:{port}/ws/chat/{room}/", origin=origin)
                )
                for _ in range(CLIENTS_PER_ROOM)
            ]
        expected: dict[str, set[str]] = {room: set() for room in ROOMS}
        for room, members in clients.items():
            for i, ws in enumerate(members):
                for n in range(MESSAGES_PER_CLIENT):
                    text = f"{room}/{i}/{n}"
                    expected[room].add(text)
                    await ws.send(json.dumps({"message": text}))

        async def receive_all(ws: ClientConnection, count: int) -> set[str]:
            got = set()
            for _ in range(count):
                frame = await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
                got.add(json.loads(frame)["message"])
            return got

        for room, members in clients.items():
            results = await asyncio.gather(
                *(receive_all(ws, len(expected[room])) for ws in members)
            )
            # Exactly the room's messages: one from the other room would displace one of these.
            assert all(got == expected[room] for got in results), (room, results)


def chat(port: int) -> None:
    asyncio.run(chat_in_two_rooms(port))


def server_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "server", APP, "--port", str(port), *extra]


def test_python_m_server(project: Path) -> None:
    port = free_port()
    with serving(project, server_command(port), port) as log:
        chat(port)
    assert "Traceback" not in log.read_text(), log_tail(log)


def test_daphne_script(project: Path) -> None:
    # The console script a Procfile written for Daphne calls, with Daphne's flags.
    daphne = Path(sys.executable).parent / "daphne"
    assert daphne.exists(), "the daphne console script is not installed"
    port = free_port()
    with serving(project, [str(daphne), "-b", "127.0.0.1", "-p", str(port), APP], port):
        chat(port)


def test_manage_py_runserver(project: Path) -> None:
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with serving(project, command, port) as log:
        chat(port)
    assert "Starting ASGI/WebSocket development server" in log.read_text(), log_tail(log)


def test_channels_redis_settings_with_two_workers(project: Path, tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not found on PATH; install redis to run this test")
    with redis_server(tmp_path) as redis_url:
        use_redis_layer(project, redis_url)
        port = free_port()
        with serving(project, server_command(port, "--workers", "2"), port, workers=2) as log:
            chat(port)
    assert WARNING not in log.read_text(), log_tail(log)


@pytest.mark.parametrize(
    "env",
    [{}, {"DJANGO_SETTINGS_MODULE": "mysite.settings"}],
    ids=["setdefault-in-asgi.py", "set-in-the-shell"],
)
def test_workers_with_the_in_memory_layer_warn_once(project: Path, env: dict[str, str]) -> None:
    port = free_port()
    with serving(project, server_command(port, "--workers", "2"), port, workers=2, **env) as log:
        pass
    lines = [line for line in log.read_text().splitlines() if WARNING in line]
    assert len(lines) == 1, log_tail(log)
    assert "--workers 2: the default channel layer is channels.layers.InMemoryChannelLayer" in (
        lines[0]
    )


def break_backend(project: Path) -> None:
    with (project / "mysite" / "settings.py").open("a") as settings:
        settings.write(
            '\nCHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisLayer"}}\n'
        )


def test_unimportable_backend_fails_manage_py_check(project: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=project, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    break_backend(project)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=project, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "(channels.E001) CHANNEL_LAYERS['default']: cannot import BACKEND " in result.stderr
    assert "'channels_redis.core.RedisLayer'" in result.stderr


def test_unimportable_backend_stops_the_server_with_one_line(project: Path) -> None:
    break_backend(project)
    result = subprocess.run(
        server_command(free_port()),
        cwd=project, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "ImproperlyConfigured: CHANNEL_LAYERS['default']: cannot import BACKEND" in lines[0]
    assert "'channels_redis.core.RedisLayer'" in lines[0]
