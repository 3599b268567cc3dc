"""Plain Django views: they set up sessions/logins that WebSocket consumers then see."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse

from channels.layers import get_channel_layer


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"django says hi", content_type="text/plain")


def do_login(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.GET.get("u", ""), password=request.GET.get("p", "")
    )
    if user is None:
        return HttpResponse(b"bad credentials", status=403)
    login(request, user)
    return HttpResponse(b"logged in")


def notify(request: HttpRequest) -> HttpResponse:
    """A synchronous view broadcasting to a chat room: the classic "push from a view"."""
    layer = get_channel_layer()
    async_to_sync(layer.group_send)(
        f"chat_{request.GET.get('room', 'lobby')}",
        {"type": "chat.message", "message": request.GET.get("m", ""), "who": "server"},
    )
    return HttpResponse(b"sent")
