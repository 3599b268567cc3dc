"""Workloads B (router), C, D, E: Django behind Channels' ProtocolTypeRouter."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_django.settings")

from django.core.asgi import get_asgi_application

# Django must be set up (get_asgi_application does it) before consumers import models/settings.
django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {"http": django_app, "websocket": URLRouter(websocket_urlpatterns)}
)
