"""ProtocolTypeRouter, URLRouter (converters, nesting, root_path), ChannelNameRouter."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import include, path, re_path
from django.urls.converters import register_converter

from channels.routing import (
    ChannelNameRouter,
    ProtocolTypeRouter,
    URLRouter,
    get_default_application,
)
from channels.testing import ApplicationCommunicator

calls: list[tuple[str, dict[str, Any]]] = []

# Routers and middleware never touch receive/send before the inner app does.
NO_IO: Any = None


def recorder(name: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append((name, scope))

    return app


class HexConverter:
    regex = "[0-9a-f]+"

    def to_python(self, value: str) -> int:
        return int(value, 16)

    def to_url(self, value: int) -> str:
        return f"{value:x}"


register_converter(HexConverter, "hex")


async def route(app: Any, path_: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    calls.clear()
    await app({"type": "websocket", "path": path_, **extra}, NO_IO, NO_IO)
    assert len(calls) == 1
    return calls[0]


async def test_path_converters_and_kwargs() -> None:
    router = URLRouter(
        [
            path("ws/int/<int:n>/", recorder("int")),
            path("ws/uuid/<uuid:u>/", recorder("uuid")),
            path("ws/hex/<hex:h>/", recorder("hex")),
            path("ws/slug/<slug:s>/<path:rest>", recorder("path")),
            re_path(r"^ws/re/(\d+)/(\w+)/$", recorder("re-args")),
            re_path(r"^ws/named/(?P<year>[0-9]{4})/$", recorder("re-kwargs")),
        ]
    )
    name, scope = await route(router, "/ws/int/42/")
    assert name == "int" and scope["url_route"] == {"args": (), "kwargs": {"n": 42}}
    u = uuid.uuid4()
    name, scope = await route(router, f"/ws/uuid/{u}/")
    assert scope["url_route"]["kwargs"] == {"u": u}
    name, scope = await route(router, "/ws/hex/ff/")
    assert scope["url_route"]["kwargs"] == {"h": 255}
    name, scope = await route(router, "/ws/slug/a-b/x/y/z")
    assert scope["url_route"]["kwargs"] == {"s": "a-b", "rest": "x/y/z"}
    name, scope = await route(router, "/ws/re/7/abc/")
    assert name == "re-args" and scope["url_route"] == {"args": ("7", "abc"), "kwargs": {}}
    name, scope = await route(router, "/ws/named/2024/")
    assert scope["url_route"]["kwargs"] == {"year": "2024"}


async def test_endpoints_must_match_fully() -> None:
    router = URLRouter([path("ws/int/<int:n>/", recorder("int"))])
    with pytest.raises(ValueError, match="No route found for path 'ws/int/42/extra'"):
        await router({"type": "websocket", "path": "/ws/int/42/extra"}, NO_IO, NO_IO)
    with pytest.raises(ValueError, match="No route found"):
        await router({"type": "websocket", "path": "/ws/int/notanint/"}, NO_IO, NO_IO)


async def test_nested_routers_accumulate_captures() -> None:
    inner = URLRouter(
        [
            path("chat/<str:room>/", recorder("chat")),
            path("", recorder("root")),
        ]
    )
    router = URLRouter(
        [
            path("v<int:version>/", inner),  # type: ignore[arg-type]
            re_path(
                r"^legacy/(?P<tenant>\w+)/",
                URLRouter([path("x/", recorder("legacy"))]),  # type: ignore[arg-type]
            ),
            path("v9/other/", recorder("fallback-after-nested")),
        ]
    )
    name, scope = await route(router, "/v2/chat/lobby/")
    assert name == "chat"
    assert scope["url_route"]["kwargs"] == {"version": 2, "room": "lobby"}
    assert scope["path_remaining"] == ""
    name, scope = await route(router, "/v3/")
    assert name == "root" and scope["url_route"]["kwargs"] == {"version": 3}
    name, scope = await route(router, "/legacy/acme/x/")
    assert name == "legacy" and scope["url_route"]["kwargs"] == {"tenant": "acme"}
    # A nested router with no match lets the outer router try the next route.
    name, _ = await route(router, "/v9/other/")
    assert name == "fallback-after-nested"
    with pytest.raises(ValueError, match="No route found for path 'v2/nothing/'"):
        await router({"type": "websocket", "path": "/v2/nothing/"}, NO_IO, NO_IO)


async def test_root_path_is_stripped_before_matching() -> None:
    router = URLRouter([path("ws/", recorder("ws"))])
    name, scope = await route(router, "/prefix/ws/", root_path="/prefix")
    assert name == "ws"
    assert scope["path"] == "/prefix/ws/"  # the scope itself is not rewritten


def test_include_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="include\\(\\) is not supported"):
        URLRouter([path("x/", include([path("y/", recorder("y"))]))])


async def test_protocol_type_router() -> None:
    router = ProtocolTypeRouter({"http": recorder("http"), "websocket": recorder("ws")})
    calls.clear()
    await router({"type": "http"}, NO_IO, NO_IO)
    await router({"type": "websocket"}, NO_IO, NO_IO)
    assert [c[0] for c in calls] == ["http", "ws"]
    with pytest.raises(ValueError, match="No application configured for scope type 'lifespan'"):
        await router({"type": "lifespan"}, NO_IO, NO_IO)


async def test_protocol_type_router_accepts_asgi2_apps() -> None:
    class Asgi2:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            calls.append(("asgi2", self.scope))

    router = ProtocolTypeRouter({"http": recorder("http"), "websocket": Asgi2})
    calls.clear()
    await router({"type": "websocket"}, NO_IO, NO_IO)
    assert calls[0][0] == "asgi2"


async def test_channel_name_router() -> None:
    router = ChannelNameRouter({"thumbnails": recorder("thumbs")})
    name, _ = await route(router, "", channel="thumbnails")
    assert name == "thumbs"
    with pytest.raises(ValueError, match="No application configured for channel name 'x'"):
        await router({"type": "channel", "channel": "x"}, NO_IO, NO_IO)
    with pytest.raises(ValueError, match="without a 'channel' key"):
        await router({"type": "channel"}, NO_IO, NO_IO)


async def test_url_router_inside_protocol_router_with_consumers() -> None:
    from tests.django_project.testapp.consumers import HelloHttpConsumer

    app = ProtocolTypeRouter(
        {
            "http": URLRouter([path("hello/<int:n>/", HelloHttpConsumer.as_asgi())]),
            "websocket": recorder("ws"),
        }
    )
    comm = ApplicationCommunicator(
        app, {"type": "http", "path": "/hello/3/", "method": "GET", "headers": []}
    )
    await comm.send_input({"type": "http.request", "body": b"x"})
    assert (await comm.receive_output())["status"] == 200
    assert (await comm.receive_output())["body"] == b"GET X"
    await comm.wait()


def test_get_default_application() -> None:
    from tests.django_project.asgi import application

    assert get_default_application() is application
    for value, error in [
        ("tests.django_project.nope.app", "Cannot import ASGI_APPLICATION module"),
        ("tests.django_project.asgi.nope", "Cannot find 'nope'"),
        (None, "Cannot find ASGI_APPLICATION"),
    ]:
        with (
            override_settings(ASGI_APPLICATION=value),
            pytest.raises(ImproperlyConfigured, match=error),
        ):
            get_default_application()


async def test_project_channel_router_feeds_a_sync_worker_consumer() -> None:
    """What ``runworker`` does: a "channel" scope per named channel, messages from the layer."""
    from channels.layers import get_channel_layer
    from tests.django_project.asgi import application

    layer = get_channel_layer()
    reply = await layer.new_channel()
    comm = ApplicationCommunicator(application, {"type": "channel", "channel": "testapp-tasks"})
    await comm.send_input({"type": "task.echo", "payload": [1, 2], "reply_to": reply})
    assert await layer.receive(reply) == {"type": "task.done", "result": [1, 2]}
    comm.stop()


async def test_routers_return_what_the_inner_application_returns() -> None:
    # Upstream routers ``return await application(...)``; middleware and tests rely on it.
    async def answer(scope: dict[str, Any], receive: Any, send: Any) -> str:
        return f"{scope['type']}:{scope.get('channel') or scope.get('path')}"

    urls = URLRouter([path("ws/<int:n>/", answer), path("in/", URLRouter([path("x/", answer)]))])
    router = ProtocolTypeRouter(
        {"http": answer, "websocket": urls, "channel": ChannelNameRouter({"c": answer})}
    )
    assert await router({"type": "http", "path": "/"}, NO_IO, NO_IO) == "http:/"
    assert await router({"type": "websocket", "path": "/ws/7/"}, NO_IO, NO_IO) == "websocket:/ws/7/"
    nested = await router({"type": "websocket", "path": "/in/x/"}, NO_IO, NO_IO)
    assert nested == "websocket:/in/x/"
    assert await router({"type": "channel", "channel": "c"}, NO_IO, NO_IO) == "channel:c"


async def test_extra_kwargs_of_path_reach_the_scope() -> None:
    router = URLRouter([path("ws/<int:n>/", recorder("extra"), {"flavour": "plain"})])
    _, scope = await route(router, "/ws/3/")
    assert scope["url_route"]["kwargs"] == {"n": 3, "flavour": "plain"}
