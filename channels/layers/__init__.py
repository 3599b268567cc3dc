"""Channel layers: configuration from Django's ``CHANNEL_LAYERS`` and the backends.

``CHANNEL_LAYERS = {"default": {"BACKEND": "<import path>", "CONFIG": {...}}}``: the backend
class is imported and instantiated with ``CONFIG`` as keyword arguments the first time an alias
is asked for, and rebuilt when the setting changes (``override_settings`` in tests).
``TEST_CONFIG`` is used instead by :meth:`ChannelLayerManager.make_test_backend`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from channels import DEFAULT_CHANNEL_LAYER
from channels.exceptions import InvalidChannelLayerError
from channels.layers.base import BaseChannelLayer, InvalidChannelName
from channels.layers.in_memory import InMemoryChannelLayer

__all__ = [
    "BaseChannelLayer",
    "ChannelLayerManager",
    "InMemoryChannelLayer",
    "InvalidChannelName",
    "channel_layers",
    "get_channel_layer",
]


class ChannelLayerManager:
    """Builds one backend per alias, lazily, and forgets them when the setting changes."""

    def __init__(self) -> None:
        self.backends: dict[str, Any] = {}
        setting_changed.connect(self._reset_backends)

    def _reset_backends(self, setting: str, **kwargs: Any) -> None:
        if setting == "CHANNEL_LAYERS":
            self.backends = {}

    @property
    def configs(self) -> dict[str, Any]:
        configs = getattr(settings, "CHANNEL_LAYERS", {})
        if not isinstance(configs, dict):
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS must be a dict of alias -> config, not {type(configs).__name__}"
            )
        return configs

    def make_backend(self, name: str) -> Any:
        config = self._alias_config(name)
        return self._make_backend(name, config.get("CONFIG", {}))

    def make_test_backend(self, name: str) -> Any:
        config = self._alias_config(name)
        if "TEST_CONFIG" not in config:
            raise InvalidChannelLayerError(f"No TEST_CONFIG specified for channel layer {name!r}")
        return self._make_backend(name, config["TEST_CONFIG"])

    def _alias_config(self, name: str) -> dict[str, Any]:
        config = self.configs[name]  # KeyError: unknown alias (get_channel_layer returns None)
        if not isinstance(config, dict):
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] must be a dict, not {type(config).__name__}"
            )
        if "ROUTING" in config:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] has a ROUTING key; routing is no longer configured "
                "on the layer (use the ASGI application instead)"
            )
        return config

    def _make_backend(self, name: str, config: Any) -> Any:
        path = self.configs[name].get("BACKEND")
        if not isinstance(path, str) or not path:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] needs a BACKEND import path string"
            )
        if not isinstance(config, dict):
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] CONFIG must be a dict, not {type(config).__name__}"
            )
        try:
            backend_class = import_string(path)
        except ImportError as exc:
            raise InvalidChannelLayerError(
                f"Cannot import BACKEND {path!r} for channel layer {name!r}: {exc}"
            ) from exc
        try:
            return backend_class(**config)
        except (TypeError, ValueError) as exc:
            raise InvalidChannelLayerError(
                f"Bad CONFIG for channel layer {name!r} ({path}): {exc}"
            ) from exc

    def __getitem__(self, key: str) -> Any:
        if key not in self.backends:
            self.backends[key] = self.make_backend(key)
            if "prometheus_client" in sys.modules:  # metrics wanted: see channels.layers.metrics
                from channels.layers.metrics import install

                install(self)
        return self.backends[key]

    def __contains__(self, key: object) -> bool:
        return key in self.configs

    def set(self, key: str, layer: Any) -> Any:
        """Install ``layer`` under ``key`` (tests); returns the layer it replaced, if any."""
        old = self.backends.get(key)
        self.backends[key] = layer
        return old


channel_layers = ChannelLayerManager()


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> Any:
    """The layer configured under ``alias``, or ``None`` when that alias is not configured."""
    try:
        return channel_layers[alias]
    except KeyError:
        return None
