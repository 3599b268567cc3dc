"""Drop-in compatibility with Channels 4.x: public names, signatures and documented behaviour.

Each test pins one fact from the Channels documentation / release notes that an existing
project (or its test-suite) relies on.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from django.db import connection, transaction

from channels.db import DatabaseSyncToAsync, aclose_old_connections, database_sync_to_async
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channels.testing import (
    ApplicationCommunicator,
    ChannelsLiveServerTestCase,
    HttpCommunicator,
    WebsocketCommunicator,
)

# --- names and signatures -------------------------------------------------------------


def test_public_names_importable() -> None:
    import channels.auth
    import channels.consumer
    import channels.exceptions
    import channels.routing
    import channels.security.websocket
    import channels.sessions
    import channels.utils

    wanted = {
        channels.auth: [
            "AuthMiddleware",
            "AuthMiddlewareStack",
            "UserLazyObject",
            "get_user",
            "login",
            "logout",
        ],
        channels.consumer: ["AsyncConsumer", "SyncConsumer", "get_handler_name"],
        channels.exceptions: [
            "RequestAborted",
            "RequestTimeout",
            "InvalidChannelLayerError",
            "AcceptConnection",
            "DenyConnection",
            "ChannelFull",
            "MessageTooLarge",
            "StopConsumer",
        ],
        channels.routing: [
            "ProtocolTypeRouter",
            "URLRouter",
            "ChannelNameRouter",
            "get_default_application",
        ],
        channels.sessions: [
            "CookieMiddleware",
            "SessionMiddleware",
            "SessionMiddlewareStack",
            "InstanceSessionWrapper",
        ],
        channels.security.websocket: [
            "OriginValidator",
            "AllowedHostsOriginValidator",
            "WebsocketDenier",
        ],
        channels.utils: ["await_many_dispatch", "name_that_thing"],
    }
    missing = [
        f"{m.__name__}.{n}" for m, names in wanted.items() for n in names if not hasattr(m, n)
    ]
    assert missing == []


def test_database_sync_to_async_is_the_sync_to_async_class() -> None:
    # Upstream spells the decorator as a SyncToAsync subclass; code may isinstance-check it.
    assert issubclass(DatabaseSyncToAsync, SyncToAsync)

    def f() -> int:
        return 1

    assert isinstance(database_sync_to_async(f), SyncToAsync)
    assert isinstance(DatabaseSyncToAsync(f, thread_sensitive=False), SyncToAsync)


def test_communicator_signatures() -> None:
    ws = inspect.signature(WebsocketCommunicator.__init__).parameters
    assert list(ws)[1:] == ["application", "path", "headers", "subprotocols", "spec_version"]
    http = inspect.signature(HttpCommunicator.__init__).parameters
    assert list(http)[1:] == ["application", "method", "path", "body", "headers"]
    assert http["body"].default == b""
    assert inspect.signature(HttpCommunicator.get_response).parameters["timeout"].default == 1
    nothing = inspect.signature(ApplicationCommunicator.receive_nothing).parameters
    assert nothing["timeout"].default == 0.1 and nothing["interval"].default == 0.01
    for name in ("receive_from", "receive_json_from", "connect"):
        params = inspect.signature(getattr(WebsocketCommunicator, name)).parameters
        assert params["timeout"].default == 1
    assert inspect.signature(WebsocketCommunicator.disconnect).parameters["code"].default == 1000


def test_live_server_testcase_attributes() -> None:
    for attr in ("host", "serve_static", "static_wrapper", "live_server_url", "live_server_ws_url"):
        assert hasattr(ChannelsLiveServerTestCase, attr)
    assert ChannelsLiveServerTestCase.serve_static is True


# --- JSON consumers: receive(**kwargs) reaches receive_json ------------------------------


class _SyncJsonKw(JsonWebsocketConsumer):
    channel_layer_alias = None

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # A subclass adding context for receive_json, as upstream's signature allows.
        super().receive(text_data=text_data, bytes_data=bytes_data, origin="sync")

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.send_json({"content": content, "kwargs": kwargs})


class _AsyncJsonKw(AsyncJsonWebsocketConsumer):
    channel_layer_alias = None

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        await super().receive(text_data=text_data, bytes_data=bytes_data, origin="async")

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"content": content, "kwargs": kwargs}, close=True)


@pytest.mark.parametrize(("consumer", "origin"), [(_SyncJsonKw, "sync"), (_AsyncJsonKw, "async")])
async def test_json_receive_passes_kwargs_to_receive_json(consumer: Any, origin: str) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/json/")
    assert await comm.connect() == (True, None)
    await comm.send_json_to({"n": 1})
    assert await comm.receive_json_from() == {"content": {"n": 1}, "kwargs": {"origin": origin}}
    await comm.disconnect()


# --- generic consumers: handlers, groups, close(), accept(headers) -------------------------


class _GroupsEcho(AsyncWebsocketConsumer):
    groups = ["compat-broadcast"]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(
            "compat-broadcast", {"type": "shout", "text": text_data}
        )

    async def shout(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"].upper())


async def test_groups_class_attribute_joins_and_leaves() -> None:
    from channels.layers import get_channel_layer

    a = WebsocketCommunicator(_GroupsEcho.as_asgi(), "/g/")
    b = WebsocketCommunicator(_GroupsEcho.as_asgi(), "/g/")
    assert (await a.connect())[0] and (await b.connect())[0]
    await a.send_to(text_data="hi")
    assert await a.receive_from() == "HI"
    assert await b.receive_from() == "HI"
    await b.disconnect()
    layer = get_channel_layer()
    assert layer is not None
    # After b left, only a is in the group.
    assert len(layer.groups.get("compat-broadcast", {})) == 1
    await a.disconnect()
    assert not layer.groups.get("compat-broadcast")


class _Lowlevel(AsyncWebsocketConsumer):
    """Overrides the raw ASGI handlers, as documented for advanced consumers."""

    channel_layer_alias = None

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        await self.accept(subprotocol="v2", headers=[(b"x-compat", b"1")])

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        await self.send(text_data=f"raw:{message.get('text')}")
        await self.close(code=4123, reason="bye")


async def test_overriding_websocket_handlers_and_close_code() -> None:
    comm = WebsocketCommunicator(_Lowlevel.as_asgi(), "/raw/", subprotocols=["v1", "v2"])
    assert comm.scope["subprotocols"] == ["v1", "v2"]
    assert await comm.connect() == (True, "v2")
    assert comm.response_headers == [(b"x-compat", b"1")]
    await comm.send_to(text_data="x")
    assert await comm.receive_from() == "raw:x"
    closing = await comm.receive_output()
    assert closing == {"type": "websocket.close", "code": 4123, "reason": "bye"}
    await comm.wait()


class _SyncDeny(WebsocketConsumer):
    channel_layer_alias = None

    def connect(self) -> None:
        self.close()


async def test_close_in_connect_denies_with_default_code() -> None:
    assert await WebsocketCommunicator(_SyncDeny.as_asgi(), "/deny/").connect() == (False, 1000)


# --- database helpers -------------------------------------------------------------------


def test_database_sync_to_async_keeps_the_test_transaction(db: None) -> None:
    """Channels 4.2: connections inside an atomic block (Django's TestCase) are not closed."""
    from django.contrib.auth.models import Group

    closed: list[bool] = []
    real_close = connection.close

    def spy_close() -> None:
        closed.append(True)
        real_close()

    @database_sync_to_async
    def count() -> int:
        return Group.objects.count()

    with transaction.atomic():
        Group.objects.create(name="compat")
        connection.close = spy_close  # type: ignore[method-assign]
        try:
            # async_to_sync + thread_sensitive: the ORM call runs in this very thread.
            assert async_to_sync(count)() == 1
        finally:
            del connection.close
    assert closed == []


async def test_aclose_old_connections_is_a_coroutine_function() -> None:
    assert inspect.iscoroutinefunction(aclose_old_connections)
    await aclose_old_connections()


# --- testing helpers: documented behaviours ----------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"text_data": "a", "bytes_data": b"b"}, {"text_data": b"bytes"}, {"bytes_data": "text"}],
)
async def test_send_to_misuse_is_an_assertion_like_upstream(kwargs: dict[str, Any]) -> None:
    comm = WebsocketCommunicator(_SyncJsonKw.as_asgi(), "/json/")
    with pytest.raises(AssertionError):
        await comm.send_to(**kwargs)
    comm.stop(exceptions=False)


def test_websocket_scope_from_path() -> None:
    comm = WebsocketCommunicator(
        _SyncJsonKw.as_asgi(), "/caf%C3%A9/room?x=1&y=%20", headers=[(b"origin", b"http://a")]
    )
    scope = comm.scope
    assert scope["type"] == "websocket"
    assert scope["path"] == "/café/room"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["headers"] == [(b"origin", b"http://a")]
    assert scope["subprotocols"] == []
    comm.stop(exceptions=False)


class _Methods:
    def __init__(self) -> None:
        self.factor = 3

    @database_sync_to_async
    def triple(self, value: int) -> int:
        return value * self.factor


async def test_database_sync_to_async_on_methods_and_with_arguments() -> None:
    assert await _Methods().triple(5) == 15

    @database_sync_to_async(thread_sensitive=False)
    def add(a: int, b: int = 1) -> int:
        return a + b

    assert await add(1, b=2) == 3


# --- Django integration ------------------------------------------------------------------


def test_app_order_check() -> None:
    from django.core.checks import run_checks
    from django.test import override_settings

    def warnings() -> list[str]:
        return [m.id for m in run_checks() if m.id and m.id.startswith("channels.")]

    assert warnings() == []  # the test project lists "channels" first
    from django.conf import settings

    reordered = [app for app in settings.INSTALLED_APPS if app != "channels"] + ["channels"]
    with override_settings(INSTALLED_APPS=reordered):
        assert warnings() == ["channels.W001"]


# --- as_asgi(**initkwargs) with the consumer's own __init__ --------------------------------


class _RoomConsumer(AsyncWebsocketConsumer):
    """Upstream passes initkwargs to the constructor; projects read them in __init__."""

    channel_layer_alias = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.room = kwargs.pop("room")
        self.greeting = kwargs.pop("greeting", "hello")
        super().__init__(*args, **kwargs)

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=f"{self.greeting} {self.room}")


async def test_as_asgi_hands_initkwargs_to_a_custom_init() -> None:
    app = _RoomConsumer.as_asgi(room="lobby", greeting="hi")
    assert app.consumer_initkwargs == {"room": "lobby", "greeting": "hi"}
    comm = WebsocketCommunicator(app, "/")
    assert (await comm.connect())[0]
    assert await comm.receive_from() == "hi lobby"
    await comm.disconnect()


# --- AllowedHostsOriginValidator follows the settings in force ------------------------------


class _Hello(AsyncWebsocketConsumer):
    channel_layer_alias = None


async def test_allowed_hosts_validator_sees_settings_changed_after_import() -> None:
    """ChannelsLiveServerTestCase appends its host to ALLOWED_HOSTS after the project's
    asgi.py may already have been imported; the browser's Origin must still pass."""
    from django.test import override_settings

    from channels.security.websocket import AllowedHostsOriginValidator

    app = AllowedHostsOriginValidator(_Hello.as_asgi())

    async def connects(origin: bytes) -> bool:
        comm = WebsocketCommunicator(app, "/", headers=[(b"origin", origin)])
        connected, _ = await comm.connect()
        if connected:
            await comm.disconnect()
        return connected

    assert not await connects(b"http://late.example.net:8081")
    with override_settings(ALLOWED_HOSTS=["late.example.net"]):
        assert await connects(b"http://late.example.net:8081")
        assert not await connects(b"http://testserver")


def test_documented_origin_patterns() -> None:
    from urllib.parse import urlparse

    from channels.security.websocket import OriginValidator

    validator = OriginValidator(
        None, [".goodsite.com", "http://.goodsite.com:80", "http://other.site.com"]
    )
    ok = [
        "https://goodsite.com",
        "https://www.goodsite.com:8443",
        "http://a.b.goodsite.com",
        "http://other.site.com",
        "http://other.site.com:80",
    ]
    bad = ["http://other.site.com:8080", "https://other.site.com", "http://badsite.com", "null"]
    assert all(validator.valid_origin(urlparse(o)) for o in ok)
    assert not any(validator.valid_origin(urlparse(o)) for o in bad)
    assert OriginValidator(None, ["*"]).valid_origin(None)


# --- names other packages (third-party layers, Channels 4 settings) rely on ---------------


def test_third_party_layers_find_the_old_name_checks() -> None:
    # channels_redis <= 4.2.0 and other third-party layers assert with these (Channels 4.2.2
    # keeps them as deprecated aliases).
    from channels.layers import BaseChannelLayer

    layer = BaseChannelLayer()
    with pytest.warns(DeprecationWarning, match="valid_channel_name is deprecated"):
        assert layer.valid_channel_name("specific.abc!def")
    with pytest.warns(DeprecationWarning, match="valid_group_name is deprecated"):
        assert layer.valid_group_name("chat_lobby")


def test_channels4_settings_naming_daphne_still_load() -> None:
    # Channels 4 projects list "daphne" first in INSTALLED_APPS (it provides runserver).
    import importlib

    assert importlib.import_module("daphne.apps") is not None


def test_database_sync_to_async_refuses_coroutine_functions() -> None:
    async def already_async() -> None:
        pass

    with pytest.raises(TypeError, match="sync functions"):
        database_sync_to_async(already_async)


# --- logging in from a synchronous consumer, as the authentication docs show -----------------


class _SyncLogin(WebsocketConsumer):
    channel_layer_alias = None

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        from django.contrib.auth import get_user_model

        from channels.auth import login, logout

        if text_data == "logout":
            async_to_sync(logout)(self.scope)
            self.send(text_data=f"out:{self.scope['user'].is_authenticated}")
            return
        user = get_user_model().objects.get(username=text_data)
        async_to_sync(login)(self.scope, user)
        self.scope["session"].save()
        self.send(text_data=self.scope["session"].session_key)


async def test_sync_consumer_login_then_session_saved(db: None) -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from channels.auth import AuthMiddlewareStack

    user = await sync_to_async(get_user_model().objects.create_user)("sam", password="pw")
    comm = WebsocketCommunicator(AuthMiddlewareStack(_SyncLogin.as_asgi()), "/")
    assert (await comm.connect())[0]
    await comm.send_to(text_data="sam")
    session_key = await comm.receive_from()
    assert isinstance(session_key, str)
    stored = await sync_to_async(lambda: SessionStore(session_key).load())()
    assert stored[SESSION_KEY] == str(user.pk)
    await comm.send_to(text_data="logout")
    assert await comm.receive_from() == "out:False"
    await comm.disconnect()


# --- SyncConsumer: thread-sensitive execution ------------------------------------------------


class _ThreadReporter(WebsocketConsumer):
    channel_layer_alias = None

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        import threading

        self.send(text_data=str(threading.get_ident()))


async def test_sync_handlers_share_the_thread_sensitive_thread() -> None:
    """Handlers run where ``sync_to_async(thread_sensitive=True)`` code runs, never on the
    event loop's thread: thread-bound state (DB connections) stays put between messages."""
    import threading

    from asgiref.sync import sync_to_async

    orm_thread = await sync_to_async(threading.get_ident, thread_sensitive=True)()
    comm = WebsocketCommunicator(_ThreadReporter.as_asgi(), "/")
    assert (await comm.connect())[0]
    seen = set()
    for _ in range(3):
        await comm.send_to(text_data="?")
        seen.add(int(await comm.receive_from()))
    await comm.disconnect()
    assert seen == {orm_thread}
    assert orm_thread != threading.get_ident()


# --- groups on a layer without the groups extension ----------------------------------------


class _NoGroupsLayer:
    """A minimal channel layer without the groups extension (``group_add`` etc.)."""

    extensions: list[str] = []

    def __init__(self, **config: Any) -> None:
        self._queues: dict[str, Any] = {}

    async def new_channel(self, prefix: str = "specific") -> str:
        import asyncio

        name = f"{prefix}.nogroups!{len(self._queues)}"
        self._queues[name] = asyncio.Queue()
        return name

    async def receive(self, channel: str) -> Any:
        return await self._queues[channel].get()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self._queues[channel].put_nowait(message)


class _GroupsOnNoGroupsLayer(AsyncWebsocketConsumer):
    channel_layer_alias = "nogroups"
    groups = ["room"]


class _SyncGroupsOnNoGroupsLayer(WebsocketConsumer):
    channel_layer_alias = "nogroups"
    groups = ["room"]


@pytest.mark.parametrize("consumer", [_GroupsOnNoGroupsLayer, _SyncGroupsOnNoGroupsLayer])
async def test_groups_need_a_layer_with_groups(consumer: Any) -> None:
    from django.test import override_settings

    from channels.exceptions import InvalidChannelLayerError

    backend = f"{__name__}._NoGroupsLayer"
    with override_settings(CHANNEL_LAYERS={"nogroups": {"BACKEND": backend}}):
        comm = WebsocketCommunicator(consumer.as_asgi(), "/")
        with pytest.raises(InvalidChannelLayerError):
            await comm.connect()
