from __future__ import annotations

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/echo/", consumers.EchoConsumer.as_asgi()),
    path("ws/group/", consumers.GroupMember.as_asgi()),
    path("ws/trigger/", consumers.Trigger.as_asgi()),
]
