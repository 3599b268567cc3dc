from django.urls import path, re_path

from . import views
from .rooms import ROOM_NAME_PATTERN

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    re_path(rf"^(?P<room_name>{ROOM_NAME_PATTERN})/$", views.room, name="room"),
]
