from django.urls import re_path

from . import consumers
from .rooms import ROOM_NAME_PATTERN

# URLRouter matches against the path without its leading "/", like Django's own resolver.
websocket_urlpatterns = [
    re_path(rf"^ws/chat/(?P<room_name>{ROOM_NAME_PATTERN})/$", consumers.ChatConsumer.as_asgi()),
]
