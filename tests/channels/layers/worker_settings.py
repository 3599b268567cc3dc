"""Minimal Django settings for running ``runworker`` against a real Redis (subprocess tests).

The Redis URL comes from ``CHANNELS_TEST_REDIS_URL``.
"""

from __future__ import annotations

import os

SECRET_KEY = "tests-only-not-secret"
INSTALLED_APPS = ["channels"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
ASGI_APPLICATION = "tests.channels.layers.worker_app.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.redis.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("CHANNELS_TEST_REDIS_URL", "redis://127.0.0.1:6379")]},
    }
}
