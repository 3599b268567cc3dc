"""Plain Django views: they set up sessions/logins that WebSocket consumers then see."""

from __future__ import annotations

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse


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
