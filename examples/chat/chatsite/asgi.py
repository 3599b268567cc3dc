"""ASGI entry point: ``python -m server --app-dir examples/chat chatsite.asgi:application``.

HTTP goes to Django's own ASGI handler; WebSocket connections are checked against
ALLOWED_HOSTS (the ``Origin`` header, against cross-site WebSocket hijacking), get the session
and user attached, and are routed to the chat consumer.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

# Set up Django (app registry, settings) before importing anything that touches models, such as
# the auth middleware and the consumers.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
