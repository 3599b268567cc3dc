"""ASGI entry point: ``python -m server tests.django_project.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_project.settings")
# Django must be set up before importing anything that touches models.
django_asgi_app = get_asgi_application()

from django.urls import re_path  # noqa: E402

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from tests.django_project.testapp.consumers import TaskConsumer  # noqa: E402
from tests.django_project.testapp.routing import (  # noqa: E402
    http_consumer_urlpatterns,
    websocket_urlpatterns,
)

# Consumer-served HTTP routes first; everything else goes to Django's own views.
django_fallback = re_path(r"", django_asgi_app)  # type: ignore[arg-type]

application = ProtocolTypeRouter(
    {
        "http": URLRouter([*http_consumer_urlpatterns, django_fallback]),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        # For ``runworker testapp-tasks``.
        "channel": ChannelNameRouter({"testapp-tasks": TaskConsumer.as_asgi()}),
    }
)
