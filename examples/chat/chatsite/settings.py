"""Settings of the chat example.

Everything a deployment changes comes from environment variables, so the same code runs from a
fresh checkout, under systemd and in the Docker image:

- ``DJANGO_SECRET_KEY``: required when ``DJANGO_DEBUG`` is off in a real deployment; a fixed
  development key is used otherwise (fine on localhost, never on the internet).
- ``DJANGO_DEBUG``: ``1``/``true`` to enable Django's debug pages (default off).
- ``DJANGO_ALLOWED_HOSTS``: comma-separated host names; they also decide which ``Origin`` may open
  a WebSocket (``AllowedHostsOriginValidator``).
- ``REDIS_URL``: e.g. ``redis://localhost:6379/0``; when set, the Redis channel layer is used so
  that several worker processes (``--workers``) or machines share the chat rooms. Without it the
  in-memory layer is used, which only reaches consumers of the same process. On a Redis Cluster
  give its startup nodes, comma-separated:
  ``redis+cluster://10.0.0.1:7000,redis+cluster://10.0.0.2:7000``.
- ``CHAT_DATABASE_PATH``: where the (unused by the chat) SQLite file would live.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _env_flag("DJANGO_DEBUG")

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY",
    "development-only-key-chat-example-change-me-0123456789abcdefghijklmnopqrstuvwxyz",
)

ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

# The chat never queries the database: sessions live in signed cookies and nobody logs in, so
# no `migrate` is needed before the first run.  The SQLite file (never created unless something
# queries it) sits in a writable temporary directory, which also holds inside the Docker image
# where the application directory belongs to root.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "CHAT_DATABASE_PATH", str(Path(tempfile.gettempdir()) / "chatsite.sqlite3")
        ),
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

ASGI_APPLICATION = "chatsite.asgi.application"

REDIS_URL = os.environ.get("REDIS_URL", "").strip()

CHANNEL_LAYERS: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [url.strip() for url in REDIS_URL.split(",") if url.strip()]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "chat": {"handlers": ["console"], "level": os.environ.get("CHAT_LOG_LEVEL", "INFO")},
    },
}
