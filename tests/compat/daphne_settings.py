"""Settings shaped like a Channels 4 project: "daphne" first, "channels" not listed."""

from __future__ import annotations

SECRET_KEY = "daphne-shim-test"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "tests.compat.daphne_urls"
STATIC_URL = "/static/"
ASGI_APPLICATION = "tests.compat.daphne_asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
