"""Worker and the runworker command."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.layers.redis import RedisChannelLayer
from channels.management.commands import runworker
from channels.worker import Worker
from tests.channels.layers.worker_app import application
from tests.support.redis import RedisServer

pytestmark = pytest.mark.timeout(60)

MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REPO_ROOT = Path(__file__).resolve().parents[3]


async def test_worker_feeds_channel_name_router(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(CHANNEL_LAYERS=MEMORY):
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        worker = Worker(application, ["echo-worker", "other-worker"], layer)
        running = asyncio.ensure_future(worker.arun())
        try:
            reply_to = await layer.new_channel()
            for i in range(3):
                await layer.send(
                    "echo-worker", {"type": "echo.request", "text": str(i), "reply_to": reply_to}
                )
            await layer.send(
                "other-worker", {"type": "echo.request", "text": "x", "reply_to": reply_to}
            )
            replies = [await layer.receive(reply_to) for _ in range(4)]
            echo = [r for r in replies if r["channel"] == "echo-worker"]
            assert [r["text"] for r in echo] == ["0", "1", "2"]
            assert len({r["instance"] for r in echo}) == 1  # one instance per channel
            assert [r["channel"] for r in replies if r["text"] == "x"] == ["other-worker"]

            # A crashing instance is logged and replaced on the next message.
            with caplog.at_level(logging.ERROR, logger="channels.worker"):
                await layer.send("echo-worker", {"type": "boom"})
                # Queued behind the crash: handled by the replacement instance, not lost.
                await layer.send(
                    "echo-worker", {"type": "echo.request", "text": "after", "reply_to": reply_to}
                )
                reply = await layer.receive(reply_to)
            assert reply["text"] == "after"
            assert "crashed" in caplog.text
            # A message without a type is refused with a log line, the worker goes on.
            await layer.send("echo-worker", {"no": "type"})
            await layer.send(
                "echo-worker", {"type": "echo.request", "text": "still", "reply_to": reply_to}
            )
            assert (await layer.receive(reply_to))["text"] == "still"
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
        assert worker.instances == {}


def test_worker_rejects_bad_arguments() -> None:
    layer = InMemoryChannelLayer()
    with pytest.raises(ValueError, match="Channel layer is not valid"):
        Worker(application, ["a"], None)
    with pytest.raises(ValueError, match="at least one channel"):
        Worker(application, [], layer)
    with pytest.raises(ValueError, match="process-local"):
        Worker(application, ["specific.x!y"], layer)
    with pytest.raises(ValueError, match="Channel name"):
        Worker(application, ["bad name"], layer)


def test_runworker_errors_are_clear() -> None:
    with (
        override_settings(CHANNEL_LAYERS={}),
        pytest.raises(CommandError, match="No channel layer"),
    ):
        call_command("runworker", "some-channel")
    with override_settings(CHANNEL_LAYERS=MEMORY):
        with pytest.raises(CommandError, match="Channel name"):
            call_command("runworker", "bad name")
        with pytest.raises(CommandError, match="process-local"):
            call_command("runworker", "specific.a!b")


def test_runworker_builds_worker_for_layer_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    created: dict[str, Any] = {}

    class FakeWorker:
        def __init__(self, **kwargs: Any) -> None:
            created.update(kwargs)

        def run(self) -> None:
            created["ran"] = True

    monkeypatch.setattr(runworker.Command, "worker_class", FakeWorker)
    layers = {**MEMORY, "other": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(
        CHANNEL_LAYERS=layers, ASGI_APPLICATION="tests.channels.layers.worker_app.application"
    ):
        call_command("runworker", "one", "two", "--layer", "other", verbosity=0)
        assert created["channels"] == ["one", "two"]
        assert created["channel_layer"] is get_channel_layer("other")
        assert created["application"] is application
        assert created["ran"] is True


@pytest.mark.slow
@pytest.mark.redis
async def test_runworker_process_with_redis(redis_server: RedisServer) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.channels.layers.worker_settings",
        "CHANNELS_TEST_REDIS_URL": redis_server.url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "django",
        "runworker",
        "echo-worker",
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    layer = RedisChannelLayer(hosts=[redis_server.url])
    try:
        reply_to = await layer.new_channel()
        # The named channel queues in Redis, so it does not matter when the worker is ready.
        await layer.send(
            "echo-worker", {"type": "echo.request", "text": "hi", "reply_to": reply_to}
        )
        reply = await asyncio.wait_for(layer.receive(reply_to), 30)
        assert reply["text"] == "hi"
        assert reply["pid"] == proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        await layer.flush()
        await layer.close()
    assert proc.returncode == 0, out.decode(errors="replace")
