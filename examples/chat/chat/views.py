import re

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from .rooms import MAX_MESSAGE_LENGTH, ROOM_NAME_PATTERN

_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)


def index(request: HttpRequest) -> HttpResponse:
    """The room picker.  The form submits ``?room=<name>`` here, so it works without JavaScript."""
    room_name = request.GET.get("room")
    if room_name is not None:
        if _ROOM_NAME.fullmatch(room_name):
            return HttpResponseRedirect(reverse("chat:room", kwargs={"room_name": room_name}))
        context = {"room_name_pattern": ROOM_NAME_PATTERN, "error": True, "value": room_name}
        return render(request, "chat/index.html", context, status=400)
    return render(request, "chat/index.html", {"room_name_pattern": ROOM_NAME_PATTERN})


def room(request: HttpRequest, room_name: str) -> HttpResponse:
    return render(
        request,
        "chat/room.html",
        {"room_name": room_name, "max_message_length": MAX_MESSAGE_LENGTH},
    )
