"""Package-level API: version, app config, exceptions, database_sync_to_async, utils."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.apps import apps

import channels
import channels.db
from channels import exceptions
from channels.db import aclose_old_connections, database_sync_to_async
from channels.utils import name_that_thing


def test_version_and_default_alias() -> None:
    assert channels.__version__.startswith("4.")
    assert channels.DEFAULT_CHANNEL_LAYER == "default"


def test_app_config() -> None:
    config = apps.get_app_config("channels")
    assert config.name == "channels"
    assert type(config).__name__ == "ChannelsConfig"


def test_exception_names() -> None:
    for name in (
        "RequestAborted",
        "RequestTimeout",
        "InvalidChannelLayerError",
        "AcceptConnection",
        "DenyConnection",
        "ChannelFull",
        "MessageTooLarge",
        "StopConsumer",
    ):
        assert issubclass(getattr(exceptions, name), Exception)
    assert issubclass(exceptions.RequestTimeout, exceptions.RequestAborted)


async def test_database_sync_to_async_closes_old_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(channels.db, "close_old_connections", lambda: calls.append("close"))

    @database_sync_to_async
    def work(x: int) -> tuple[int, bool]:
        calls.append("work")
        return x * 2, threading.current_thread() is threading.main_thread()

    assert await work(21) == (42, False)
    assert calls == ["close", "work", "close"]

    calls.clear()

    def failing() -> None:
        calls.append("work")
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await database_sync_to_async(failing)()
    assert calls == ["close", "work", "close"]  # closed even when the call fails

    await aclose_old_connections()
    assert calls[-1] == "close"


async def test_database_sync_to_async_on_methods_and_with_arguments() -> None:
    class Repo:
        factor = 3

        @database_sync_to_async
        def scaled(self, x: int) -> int:
            return x * self.factor

        @database_sync_to_async(thread_sensitive=False)
        def other(self) -> str:
            return "ok"

    repo: Any = Repo()
    assert await repo.scaled(2) == 6
    assert await repo.other() == "ok"


def test_name_that_thing() -> None:
    assert name_that_thing(test_name_that_thing).endswith("test_misc.test_name_that_thing")
    assert name_that_thing(threading) == "threading"
    assert name_that_thing(threading.Event()) == "threading.Event"
