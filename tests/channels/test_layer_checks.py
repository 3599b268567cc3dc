"""A CHANNEL_LAYERS BACKEND that cannot be imported fails at start-up and in ``manage.py check``,
never as a 500 at the first WebSocket handshake; channels_redis paths resolve to our layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from channels.checks import check_channel_layers, validate_channel_layers
from channels.layers import channel_layers, get_channel_layer
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis_pubsub import RedisPubSubChannelLayer
from channels.routing import ProtocolTypeRouter, get_default_application

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


async def http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def test_channels_redis_paths_are_our_layers() -> None:
    from channels_redis.core import RedisChannelLayer as CoreLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer as PubSubLayer

    assert CoreLayer is RedisChannelLayer
    assert PubSubLayer is RedisPubSubChannelLayer


def test_settings_naming_channels_redis_build_our_layers() -> None:
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        },
        "pubsub": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        },
    }
    with override_settings(CHANNEL_LAYERS=layers):
        assert check_channel_layers() == []
        validate_channel_layers()
        # Built lazily, as upstream: no connection is made here.
        assert type(get_channel_layer()) is RedisChannelLayer
        assert type(get_channel_layer("pubsub")) is RedisPubSubChannelLayer
        channel_layers.backends = {}


def test_unimportable_backend_is_a_system_check_error() -> None:
    layers = {"default": {"BACKEND": "nowhere.Layer"}, "spare": IN_MEMORY}
    with override_settings(CHANNEL_LAYERS=layers):
        errors = check_channel_layers()
        # Registered by the channels app config: `manage.py check` reports it.
        assert [e.id for e in checks.run_checks() if e.id == "channels.E001"] == ["channels.E001"]
    assert len(errors) == 1
    assert errors[0].level == checks.ERROR
    assert errors[0].id == "channels.E001"
    assert errors[0].msg == (
        "CHANNEL_LAYERS['default']: cannot import BACKEND 'nowhere.Layer': "
        "No module named 'nowhere'"
    )


def test_unimportable_backend_fails_building_the_application() -> None:
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.Nope"}}):
        with pytest.raises(ImproperlyConfigured) as failure:
            ProtocolTypeRouter({"http": http_app})
        message = str(failure.value)
        assert "\n" not in message
        assert message.startswith("CHANNEL_LAYERS['default']: cannot import BACKEND ")
        assert "'channels.layers.Nope'" in message
        # runserver, runworker and ChannelsLiveServerTestCase start from here.
        with pytest.raises(ImproperlyConfigured, match=r"channels\.layers\.Nope"):
            get_default_application()


def test_missing_redis_dependencies_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backend module failing the way channels_redis.core fails without the redis extra.
    (tmp_path / "needs_redis.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'redis'\", name='redis')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with override_settings(CHANNEL_LAYERS={"main": {"BACKEND": "needs_redis.Layer"}}):
        [error] = check_channel_layers()
    assert error.msg.endswith(
        "No module named 'redis' (the Redis layers need: pip install 'channels-server[redis]')"
    )
    assert "CHANNEL_LAYERS['main']" in error.msg
