from __future__ import annotations

import json
import os

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse

import channels


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"Hello, world!", content_type="text/plain")


# Resolved once at import: which package `import channels` found.
CHANNELS_FILE = os.path.abspath(channels.__file__ or "")


async def info(request: HttpRequest) -> HttpResponse:
    """Which stack is really serving: the harness checks it before measuring."""
    body = {
        "channels_file": CHANNELS_FILE,
        "channels_version": getattr(channels, "__version__", "unknown"),
        "django_version": django.get_version(),
        "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
        "pid": os.getpid(),
    }
    return HttpResponse(json.dumps(body).encode(), content_type="application/json")
