"""CookieMiddleware, SessionMiddleware and AuthMiddleware against a real SQLite test database."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from channels.auth import AuthMiddleware, AuthMiddlewareStack, get_user, login, logout
from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.sessions import CookieMiddleware, SessionMiddleware, SessionMiddlewareStack
from channels.testing import HttpCommunicator, WebsocketCommunicator
from tests.django_project.testapp.consumers import WhoAmIConsumer

# Routers and middleware never touch receive/send before the inner app does.
NO_IO: Any = None


def cookie_header(**cookies: str) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode())]


def set_cookies(headers: list[tuple[bytes, bytes]]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name.lower() == b"set-cookie":
            jar.load(value.decode("latin-1"))
    return jar


@sync_to_async
def create_user(username: str, password: str = "pw") -> Any:
    return get_user_model().objects.create_user(username, password=password)


@sync_to_async
def django_login(username: str, password: str = "pw") -> str:
    """Log in through Django's own views/client; returns the session cookie value."""
    client = Client()
    assert client.login(username=username, password=password)
    return client.cookies["sessionid"].value


class Auth(AsyncJsonWebsocketConsumer):
    channel_layer_alias = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content["op"] == "login":
            user = await database_sync_to_async(get_user_model().objects.get)(
                username=content["name"]
            )
            await login(self.scope, user)
            session: Any = self.scope["session"]
            await database_sync_to_async(lambda: session.save())()
        elif content["op"] == "logout":
            await logout(self.scope)
        user = self.scope["user"]
        await self.send_json(
            {
                "user": user.username if user.is_authenticated else None,
                "key": self.scope["session"].session_key,
            }
        )


async def whoami(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    comm = WebsocketCommunicator(AuthMiddlewareStack(WhoAmIConsumer.as_asgi()), "/", headers)
    assert (await comm.connect(timeout=5))[0]
    data = await comm.receive_json_from(timeout=5)
    await comm.disconnect(timeout=5)
    return data  # type: ignore[no-any-return]


async def test_anonymous_user_and_explicitly_saved_session(db: None) -> None:
    data = await whoami([])
    assert data == {"user": None, "visits": 1}


async def test_user_from_a_django_login_and_session_persists(db: None) -> None:
    await create_user("alice")
    session_id = await django_login("alice")
    headers = cookie_header(sessionid=session_id)
    assert await whoami(headers) == {"user": "alice", "visits": 1}
    assert await whoami(headers) == {"user": "alice", "visits": 2}


async def test_changed_password_invalidates_session(db: None) -> None:
    user = await create_user("bob")
    session_id = await django_login("bob")

    def change_password() -> None:
        user.set_password("new")
        user.save()

    await sync_to_async(change_password)()
    data = await whoami(cookie_header(sessionid=session_id))
    assert data["user"] is None


async def test_login_and_logout_inside_a_consumer(db: None) -> None:
    await create_user("carol")
    comm = WebsocketCommunicator(AuthMiddlewareStack(Auth.as_asgi()), "/")
    await comm.connect()
    await comm.send_json_to({"op": "login", "name": "carol"})
    data = await comm.receive_json_from(timeout=5)
    assert data["user"] == "carol" and data["key"]
    session_key = data["key"]
    await comm.disconnect()

    # A new connection presenting that session is carol...
    comm = WebsocketCommunicator(
        AuthMiddlewareStack(Auth.as_asgi()), "/", cookie_header(sessionid=session_key)
    )
    await comm.connect()
    await comm.send_json_to({"op": "whoami"})
    assert (await comm.receive_json_from(timeout=5))["user"] == "carol"
    # ...until she logs out, which flushes the session.
    await comm.send_json_to({"op": "logout"})
    data = await comm.receive_json_from(timeout=5)
    assert data["user"] is None
    await comm.disconnect()
    exists = await sync_to_async(SessionStore().exists)(session_key)
    assert not exists


async def test_login_needs_a_session_and_a_user() -> None:
    with pytest.raises(ValueError, match="SessionMiddleware"):
        await login({}, object())
    with pytest.raises(ValueError, match="User must be passed"):
        await login({"session": SessionStore()}, None)
    with pytest.raises(ValueError, match="Cannot find session"):
        await get_user({})


class SessionWriter(AsyncHttpConsumer):
    channel_layer_alias = None

    async def handle(self, body: bytes) -> None:
        session = self.scope["session"]
        if body == b"write":
            # A new session never touches the database until it is saved.
            session["flavour"] = "vanilla"
        await self.send_response(200, str(session.session_key).encode())


class SessionReader(AsyncHttpConsumer):
    channel_layer_alias = None

    async def handle(self, body: bytes) -> None:
        session: Any = self.scope["session"]
        value: str = await database_sync_to_async(lambda: session.get("flavour", "none"))()
        await self.send_response(200, value.encode())


async def test_http_session_saved_and_cookie_set_on_response_start(db: None) -> None:
    response = await HttpCommunicator(
        SessionMiddlewareStack(SessionWriter.as_asgi()), "POST", "/", body=b"write"
    ).get_response(timeout=5)
    jar = set_cookies(response["headers"])
    assert "sessionid" in jar
    morsel = jar["sessionid"]
    assert morsel["path"] == "/" and morsel["httponly"] and morsel["samesite"] == "Lax"
    assert int(morsel["max-age"]) > 0
    # The session was saved: a second request with the cookie reads the value back.
    response = await HttpCommunicator(
        SessionMiddlewareStack(SessionReader.as_asgi()),
        "GET",
        "/",
        headers=cookie_header(sessionid=morsel.value),
    ).get_response(timeout=5)
    assert response["body"] == b"vanilla"


async def test_untouched_or_unmodified_session_sets_no_cookie(db: None) -> None:
    response = await HttpCommunicator(
        SessionMiddlewareStack(SessionWriter.as_asgi()), "POST", "/", body=b"read"
    ).get_response(timeout=5)
    assert "sessionid" not in set_cookies(response["headers"])


class ConnectWriter(AsyncJsonWebsocketConsumer):
    channel_layer_alias = None

    async def connect(self) -> None:
        self.scope["session"]["room"] = "lobby"
        await self.accept()


async def test_websocket_session_saved_and_cookie_set_on_accept(db: None) -> None:
    comm = WebsocketCommunicator(SessionMiddlewareStack(ConnectWriter.as_asgi()), "/")
    assert (await comm.connect(timeout=5))[0]
    assert comm.response_headers is not None
    jar = set_cookies(comm.response_headers)
    await comm.disconnect()
    key = jar["sessionid"].value
    data = await sync_to_async(lambda: SessionStore(key).load())()
    assert data == {"room": "lobby"}


async def test_cookie_middleware_parses_all_cookie_headers() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope["cookies"])

    await CookieMiddleware(app)(
        {"type": "http", "headers": [(b"cookie", b"a=1; b=two"), (b"cookie", b"c=%20x")]},
        NO_IO,
        NO_IO,
    )
    assert seen == {"a": "1", "b": "two", "c": "%20x"}


async def test_middleware_order_errors_are_clear() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("unreachable")

    with pytest.raises(ValueError, match="did not have a headers key"):
        await CookieMiddleware(app)({"type": "lifespan"}, NO_IO, NO_IO)
    with pytest.raises(ValueError, match="needs to run inside of CookieMiddleware"):
        await SessionMiddleware(app)({"type": "http", "headers": []}, NO_IO, NO_IO)
    with pytest.raises(ValueError, match="SessionMiddleware must be above it"):
        await AuthMiddleware(app)({"type": "http", "headers": []}, NO_IO, NO_IO)


def test_set_cookie_options() -> None:
    message: dict[str, Any] = {"type": "http.response.start", "status": 200}
    CookieMiddleware.set_cookie(
        message, "k", "v", max_age=10, domain="example.com", secure=True, samesite="Strict"
    )
    CookieMiddleware.delete_cookie(message, "old")
    jar = set_cookies(message["headers"])
    assert jar["k"].value == "v" and jar["k"]["secure"] and jar["k"]["domain"] == "example.com"
    assert jar["k"]["samesite"] == "Strict" and jar["k"]["expires"]
    assert jar["old"]["max-age"] == "0"
    with pytest.raises(ValueError, match="samesite"):
        CookieMiddleware.set_cookie(message, "k", samesite="sometimes")


def test_scope_user_placeholder_refuses_early_access() -> None:
    from channels.auth import UserLazyObject

    lazy = UserLazyObject()
    with pytest.raises(ValueError, match="before it is ready"):
        _ = lazy.is_authenticated


class Failing(AsyncHttpConsumer):
    channel_layer_alias = None

    async def handle(self, body: bytes) -> None:
        self.scope["session"]["half"] = "built"
        await self.send_response(500, b"oops")


async def test_session_not_saved_on_server_error(db: None) -> None:
    response = await HttpCommunicator(
        SessionMiddlewareStack(Failing.as_asgi()), "GET", "/"
    ).get_response(timeout=5)
    assert response["status"] == 500
    assert "sessionid" not in set_cookies(response["headers"])


async def test_browser_session_cookie_when_expiring_at_browser_close(db: None) -> None:
    from django.test import override_settings

    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True, SESSION_COOKIE_SECURE=True):
        response = await HttpCommunicator(
            SessionMiddlewareStack(SessionWriter.as_asgi()), "POST", "/", body=b"write"
        ).get_response(timeout=5)
    morsel = set_cookies(response["headers"])["sessionid"]
    assert morsel["max-age"] == "" and morsel["expires"] == ""
    assert morsel["secure"]


# --- behaviours matched to upstream Channels 4.3 ----------------------------------------------


async def test_logout_sends_user_logged_out_only_when_someone_was_logged_in(db: None) -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.auth.signals import user_logged_out

    received: list[Any] = []

    def receiver(sender: Any, user: Any, **kwargs: Any) -> None:
        received.append(user)

    user_logged_out.connect(receiver)
    try:
        for scope in ({"session": SessionStore()}, {"session": SessionStore(), "user": None}):
            await logout(scope)
        anonymous: dict[str, Any] = {"session": SessionStore(), "user": AnonymousUser()}
        await logout(anonymous)
        assert received == []
        assert isinstance(anonymous["user"], AnonymousUser)

        dave = await create_user("dave")
        scope: dict[str, Any] = {"session": SessionStore(), "user": dave}
        await login(scope, dave)
        await logout(scope)
        assert received == [dave]
        assert isinstance(scope["user"], AnonymousUser)
    finally:
        user_logged_out.disconnect(receiver)
    with pytest.raises(ValueError, match="SessionMiddleware"):
        await logout({"user": AnonymousUser()})


def touch_then_delete(session: Any) -> None:
    """Modify the session, then delete its row as a concurrent logout elsewhere would."""
    session["touched"] = True
    SessionStore(session.session_key).delete()


class SessionToucher(AsyncHttpConsumer):
    """Modifies the session; the test deletes its row before the response is sent."""

    channel_layer_alias = None

    async def handle(self, body: bytes) -> None:
        await database_sync_to_async(touch_then_delete)(self.scope["session"])
        await self.send_response(200, b"ok")


class WebsocketSessionToucher(AsyncJsonWebsocketConsumer):
    channel_layer_alias = None

    async def connect(self) -> None:
        await database_sync_to_async(touch_then_delete)(self.scope["session"])
        await self.accept()


@sync_to_async
def existing_session_key() -> str:
    store = SessionStore()
    store["seen"] = True
    store.create()
    assert store.session_key is not None
    return store.session_key


async def test_session_deleted_meanwhile_fails_the_response_as_upstream(db: None) -> None:
    from django.core.exceptions import SuspiciousOperation

    headers = cookie_header(sessionid=await existing_session_key())
    communicator = HttpCommunicator(
        SessionMiddlewareStack(SessionToucher.as_asgi()), "GET", "/", headers=headers
    )
    # asgiref's communicator reports the app's exception once its wait for output times out.
    with pytest.raises(SuspiciousOperation) as failure:
        await communicator.get_response(timeout=1)
    assert str(failure.value) == (
        "The request's session was deleted before the request completed. The user may have "
        "logged out in a concurrent request, for example."
    )


async def test_session_deleted_meanwhile_does_not_cost_a_websocket_handshake(db: None) -> None:
    # Upstream never saves on websocket.accept; our save there must not refuse what it accepts.
    headers = cookie_header(sessionid=await existing_session_key())
    comm = WebsocketCommunicator(
        SessionMiddlewareStack(WebsocketSessionToucher.as_asgi()), "/", headers
    )
    assert (await comm.connect(timeout=5))[0]
    assert comm.response_headers is not None
    assert "sessionid" not in set_cookies(comm.response_headers)
    await comm.disconnect()


async def test_invalid_session_cookie_samesite_fails_as_upstream(db: None) -> None:
    from django.test import override_settings

    with override_settings(SESSION_COOKIE_SAMESITE="Sometimes"):
        communicator = HttpCommunicator(
            SessionMiddlewareStack(SessionWriter.as_asgi()), "POST", "/", body=b"write"
        )
        with pytest.raises(AssertionError) as failure:
            await communicator.get_response(timeout=1)
    assert str(failure.value) == "samesite must be either 'strict', 'lax' or 'none'"
    # Disabled with False (Django's way to send no SameSite attribute): no error, no attribute.
    with override_settings(SESSION_COOKIE_SAMESITE=False):
        response = await HttpCommunicator(
            SessionMiddlewareStack(SessionWriter.as_asgi()), "POST", "/", body=b"write"
        ).get_response(timeout=5)
    assert set_cookies(response["headers"])["sessionid"]["samesite"] == ""
