"""ASGI entry point: ``python -m server --app-dir examples/chat chatsite.asgi:application``.

Written in the order of the Channels tutorial: the Channels modules are imported before
``get_asgi_application()`` sets Django up (they touch no settings or models at import), and the
project's own consumers, which may import models, after it.

HTTP goes to Django's own ASGI handler; WebSocket connections are checked against
ALLOWED_HOSTS (the ``Origin`` header, against cross-site WebSocket hijacking), get the session
and user attached, and are routed to the chat consumer.
"""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

# Set up Django (app registry, settings) before importing code that touches models.
django_asgi_app = get_asgi_application()

from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
