"""Cookies and Django sessions for ASGI connections.

``CookieMiddleware`` parses the request's Cookie header into ``scope["cookies"]``;
``SessionMiddleware`` then exposes a lazy ``scope["session"]`` (a Django ``SessionStore``) and,
when the app modified it, saves it and sets the session cookie on the first response message
that can carry headers: ``http.response.start`` or ``websocket.accept``.  Changes a WebSocket
consumer makes after accepting are not saved automatically: call ``session.save()`` (through
``database_sync_to_async`` in async code) or ``await session.asave()``.
"""

from __future__ import annotations

import datetime
import logging
import time
from http.cookies import SimpleCookie
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.core.exceptions import SuspiciousOperation
from django.http.cookie import parse_cookie
from django.utils.encoding import force_str
from django.utils.functional import LazyObject, empty
from django.utils.http import http_date

from .db import database_sync_to_async
from .utils import Receive, Scope, Send

logger = logging.getLogger("django.channels.sessions")

if TYPE_CHECKING:
    _LazyBase = LazyObject[Any]
else:  # LazyObject is only generic in django-stubs, not at runtime
    _LazyBase = LazyObject


def _cookie_header(scope: Scope) -> str:
    values = [
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"cookie"
    ]
    # HTTP/2 clients may split cookies over several fields (RFC 9113 §8.2.3): rejoin them.
    return "; ".join(values)


class InvalidSameSite(AssertionError, ValueError):
    """A ``samesite`` value other than lax/none/strict.  Upstream reports it with ``assert``
    (so projects' tests expect ``AssertionError``); it is a ``ValueError`` too, and raised even
    under ``python -O``, where an ``assert`` would let the bad attribute through."""


class CookieMiddleware:
    """Puts the request's cookies, as a dict, in ``scope["cookies"]``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if "headers" not in scope:
            raise ValueError(
                "CookieMiddleware was passed a scope that did not have a headers key (make sure "
                "it is only passed HTTP or WebSocket connections)"
            )
        scope = dict(scope, cookies=parse_cookie(_cookie_header(scope)))
        return await self.inner(scope, receive, send)

    @classmethod
    def set_cookie(
        cls,
        message: dict[str, Any],
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: str | datetime.datetime | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = "lax",
    ) -> None:
        """Add a Set-Cookie header to an ``http.response.start``/``websocket.accept`` message."""
        cookies: SimpleCookie = SimpleCookie()
        cookies[key] = value
        morsel = cookies[key]
        if expires is not None:
            if isinstance(expires, datetime.datetime):
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=datetime.UTC)
                expires = http_date(expires.timestamp())
            morsel["expires"] = expires
        if max_age is not None:
            morsel["max-age"] = max_age
            if expires is None:  # IE and old clients only understand "expires"
                morsel["expires"] = http_date(time.time() + max_age)
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite:
            if samesite.lower() not in ("lax", "none", "strict"):
                raise InvalidSameSite("samesite must be either 'strict', 'lax' or 'none'")
            morsel["samesite"] = samesite
        headers = list(message.get("headers") or [])
        headers.append((b"Set-Cookie", morsel.output(header="").strip().encode("latin-1")))
        message["headers"] = headers

    @classmethod
    def delete_cookie(
        cls, message: dict[str, Any], key: str, path: str = "/", domain: str | None = None
    ) -> None:
        cls.set_cookie(
            message,
            key,
            max_age=0,
            path=path,
            domain=domain,
            expires="Thu, 01 Jan 1970 00:00:00 GMT",
        )


class _LazySession(_LazyBase):
    """The session store is only built when the app first touches ``scope["session"]``."""

    def __init__(self, store_class: Any, session_key: str | None) -> None:
        self.__dict__["_store_class"] = store_class
        self.__dict__["_session_key"] = session_key
        super().__init__()

    def _setup(self) -> None:
        self._wrapped = self.__dict__["_store_class"](self.__dict__["_session_key"])

    @property
    def touched(self) -> bool:
        return self._wrapped is not empty


# Upstream's wording, so handlers and tests written for Channels match it.
SESSION_DELETED = (
    "The request's session was deleted before the request completed. The user may have logged "
    "out in a concurrent request, for example."
)


def _save(session: Any) -> bool:
    """Save; False when the session row was deleted meanwhile (Django's ``UpdateError``)."""
    try:
        session.save()
    except UpdateError:
        return False
    return True


class InstanceSessionWrapper:
    """Per-connection state of ``SessionMiddleware``: the scope copy and the wrapped ``send``."""

    # Messages on which a modified session is saved, and which may carry its cookie.
    save_message_types = ("http.response.start", "websocket.accept")

    def __init__(self, scope: Scope, send: Send) -> None:
        self.cookie_name = settings.SESSION_COOKIE_NAME
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore
        self.scope = dict(scope)
        self.real_send = send
        if "session" in self.scope:
            # An outer SessionMiddleware already handles saving.
            self.activated = False
            return
        if "cookies" not in self.scope:
            raise ValueError(
                "No cookies in scope - SessionMiddleware needs to run inside of CookieMiddleware."
            )
        self.scope["session"] = _LazySession(
            self.session_store, self.scope["cookies"].get(self.cookie_name)
        )
        self.activated = True

    async def send(self, message: dict[str, Any]) -> None:
        if self.activated and message["type"] in self.save_message_types:
            await self._maybe_save(message)
        await self.real_send(message)

    async def _maybe_save(self, message: dict[str, Any]) -> None:
        session = self.scope["session"]
        if not session.touched:
            return
        if message.get("status", 200) == 500:
            return  # like Django: don't persist what a crashing view half-built
        if not (session.modified or settings.SESSION_SAVE_EVERY_REQUEST):
            return
        if session.is_empty():
            if self.cookie_name in self.scope["cookies"]:
                CookieMiddleware.delete_cookie(
                    message,
                    self.cookie_name,
                    path=settings.SESSION_COOKIE_PATH,
                    domain=settings.SESSION_COOKIE_DOMAIN,
                )
            return
        if not await database_sync_to_async(_save)(session):
            if message["type"] == "http.response.start":
                raise SuspiciousOperation(SESSION_DELETED)
            # Saving on websocket.accept is our extension (upstream never saves there): a
            # session deleted meanwhile must not cost the handshake that upstream would accept.
            logger.info("Session not saved on websocket.accept: %s", SESSION_DELETED)
            return
        if session.get_expire_at_browser_close():
            max_age: int | None = None
            expires: str | None = None
        else:
            max_age = session.get_expiry_age()
            expires = http_date(time.time() + max_age)
        CookieMiddleware.set_cookie(
            message,
            self.cookie_name,
            force_str(session.session_key),
            max_age=max_age,
            expires=expires,
            domain=settings.SESSION_COOKIE_DOMAIN,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE or False,
            httponly=settings.SESSION_COOKIE_HTTPONLY or False,
            samesite=settings.SESSION_COOKIE_SAMESITE or None,
        )


class SessionMiddleware:
    """Gives the app a lazy ``scope["session"]``; needs ``CookieMiddleware`` outside it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        wrapper = InstanceSessionWrapper(scope, send)
        return await self.inner(wrapper.scope, receive, wrapper.send)


def SessionMiddlewareStack(inner: Any) -> CookieMiddleware:
    return CookieMiddleware(SessionMiddleware(inner))
