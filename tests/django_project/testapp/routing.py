"""WebSocket and consumer-served HTTP routes of the test project."""

from __future__ import annotations

from django.urls import path, re_path

from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from .consumers import (
    AsyncEchoConsumer,
    ChatConsumer,
    EchoConsumer,
    HelloHttpConsumer,
    UserCountConsumer,
    WhoAmIConsumer,
)

websocket_urlpatterns = [
    path("ws/echo/", EchoConsumer.as_asgi()),
    path("ws/aecho/", AsyncEchoConsumer.as_asgi()),
    path("ws/chat/<str:room>/", ChatConsumer.as_asgi()),
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
    path("ws/users/", UserCountConsumer.as_asgi()),
    path(
        "ws/items/",
        URLRouter(  # type: ignore[arg-type]  # django-stubs expects HTTP views only
            [
                path("<int:item_id>/", AsyncEchoConsumer.as_asgi()),
                re_path(r"^(?P<slug>[a-z]+)/$", AsyncEchoConsumer.as_asgi()),
            ]
        ),
    ),
    path("ws/guarded/", AllowedHostsOriginValidator(AsyncEchoConsumer.as_asgi())),
]

http_consumer_urlpatterns = [
    path("consumer/", HelloHttpConsumer.as_asgi()),
]
