"""Django settings for the multi-worker end-to-end test: a Redis layer shared by workers.

The Redis URL comes from ``CHANNELS_TEST_REDIS_URL``, the backend from ``CHANNELS_TEST_LAYER``.
"""

from __future__ import annotations

import os

SECRET_KEY = "tests-only-not-secret"
INSTALLED_APPS = ["channels"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.channels.layers.multiworker_asgi"
urlpatterns: list[object] = []
ASGI_APPLICATION = "tests.channels.layers.multiworker_asgi.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": os.environ.get("CHANNELS_TEST_LAYER", "channels.layers.redis.RedisChannelLayer"),
        "CONFIG": {"hosts": [os.environ.get("CHANNELS_TEST_REDIS_URL", "redis://127.0.0.1:6379")]},
    }
}
