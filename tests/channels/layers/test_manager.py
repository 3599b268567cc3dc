"""CHANNEL_LAYERS configuration: lazy construction, reset on change, clear errors."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channels.exceptions import InvalidChannelLayerError
from channels.layers import (
    BaseChannelLayer,
    InMemoryChannelLayer,
    channel_layers,
    get_channel_layer,
)

MEMORY = "channels.layers.InMemoryChannelLayer"


def test_default_layer_built_from_settings_and_cached() -> None:
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": MEMORY, "CONFIG": {"capacity": 7}}}
    ):
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        assert isinstance(layer, BaseChannelLayer)
        assert layer.capacity == 7
        assert get_channel_layer() is layer
    # Leaving override_settings changes CHANNEL_LAYERS again: a fresh layer is built.
    assert get_channel_layer() is not layer


def test_unknown_alias_gives_none() -> None:
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": MEMORY}}):
        assert get_channel_layer("nope") is None
        assert "default" in channel_layers
        assert "nope" not in channel_layers


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"default": {"BACKEND": "no.such.module.Layer"}}, "Cannot import BACKEND"),
        ({"default": {"CONFIG": {}}}, "needs a BACKEND"),
        ({"default": {"BACKEND": MEMORY, "CONFIG": {"bogus": 1, "capacity": 0}}}, "Bad CONFIG"),
        ({"default": {"BACKEND": MEMORY, "CONFIG": []}}, "CONFIG must be a dict"),
        ({"default": {"BACKEND": MEMORY, "ROUTING": "x.y"}}, "ROUTING"),
        ({"default": "channels.layers.InMemoryChannelLayer"}, "must be a dict"),
    ],
)
def test_bad_config_raises_invalid_channel_layer_error(config: object, message: str) -> None:
    with (
        override_settings(CHANNEL_LAYERS=config),
        pytest.raises(InvalidChannelLayerError, match=message),
    ):
        get_channel_layer()


def test_test_config_and_set() -> None:
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": MEMORY, "CONFIG": {}, "TEST_CONFIG": {"expiry": 3}}}
    ):
        layer = channel_layers.make_test_backend("default")
        assert layer.expiry == 3
        replacement = InMemoryChannelLayer()
        channel_layers.set("default", replacement)
        assert get_channel_layer() is replacement


def test_redis_layers_importable_from_upstream_paths() -> None:
    from channels.layers.redis import RedisChannelLayer, RedisPubSubChannelLayer
    from channels.layers.redis_pubsub import RedisPubSubChannelLayer as Direct

    assert RedisPubSubChannelLayer is Direct
    assert issubclass(RedisChannelLayer, BaseChannelLayer)
