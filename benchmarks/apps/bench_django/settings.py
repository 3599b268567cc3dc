"""Minimal settings: no database, no middleware, so the figures measure server + framework."""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench_django.urls"
DATABASES: dict[str, Any] = {}
USE_TZ = True
LOGGING_CONFIG = None


def _redis_backend() -> str:
    """The Redis layer class of whichever Channels stack is installed."""
    from importlib.util import find_spec

    # Upstream: the channels_redis package.  This repository's Channels ships its own layer.
    for path in ("channels_redis.core", "channels.layers.redis"):
        try:
            found = find_spec(path) is not None
        except ImportError:  # the parent package is missing
            found = False
        if found:
            return f"{path}.RedisChannelLayer"
    raise RuntimeError("no Redis channel layer is importable")


_layer = os.environ.get("BENCH_LAYER", "memory")
if _layer == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _redis_backend(),
            # Comma-separated: the startup nodes of a Redis Cluster (workload D-scale).
            "CONFIG": {"hosts": os.environ["BENCH_REDIS_URL"].split(",")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
