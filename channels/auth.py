"""Django authentication for ASGI connections: ``scope["user"]``, ``login`` and ``logout``.

``login``/``logout`` change the session but do not save it: call ``scope["session"].save()``
(through ``database_sync_to_async``) or let ``SessionMiddleware`` save it on the response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import auth as django_auth
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
    user_logged_in,
    user_logged_out,
)
from django.utils.crypto import constant_time_compare
from django.utils.functional import LazyObject

from .db import database_sync_to_async
from .middleware import BaseMiddleware
from .sessions import CookieMiddleware, SessionMiddleware
from .utils import Receive, Scope, Send

_NO_SESSION = "Cannot find session in scope. You should wrap your consumer in SessionMiddleware."

if TYPE_CHECKING:
    _LazyBase = LazyObject[Any]
else:  # LazyObject is only generic in django-stubs, not at runtime
    _LazyBase = LazyObject


def _session_user_id(session: Any) -> Any:
    # Session values are strings; convert back to the pk's Python type.
    return get_user_model()._meta.pk.to_python(session[SESSION_KEY])


def _session_hash_ok(session: Any, user: Any) -> bool:
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    # Hashes made with a key from SECRET_KEY_FALLBACKS stay valid (Django >= 4.1).
    fallbacks = getattr(user, "get_session_auth_fallback_hash", None)
    if fallbacks is not None:
        return any(constant_time_compare(session_hash, h) for h in fallbacks())
    return False


def _anonymous_user() -> Any:
    # Imported on use: django.contrib.auth.models needs the app registry, and the tutorial's
    # asgi.py imports this module before get_asgi_application() has set Django up.
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


def _get_user_sync(scope: Scope) -> Any:
    if "session" not in scope:
        raise ValueError(_NO_SESSION)
    session = scope["session"]
    user = None
    try:
        user_id = _session_user_id(session)
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        pass
    else:
        if backend_path in settings.AUTHENTICATION_BACKENDS:
            backend = load_backend(backend_path)
            user = backend.get_user(user_id)
            # A password change invalidates other sessions (Django's session verification).
            if hasattr(user, "get_session_auth_hash") and not _session_hash_ok(session, user):
                session.flush()
                user = None
    return user or _anonymous_user()


get_user = database_sync_to_async(_get_user_sync)
get_user.__doc__ = "Return the user of the scope's session, or ``AnonymousUser``."


def _login_sync(scope: Scope, user: Any, backend: str | None = None) -> None:
    if "session" not in scope:
        raise ValueError(_NO_SESSION)
    session = scope["session"]
    if user is None:
        user = scope.get("user")
    if user is None:
        raise ValueError("User must be passed as an argument or must be present in the scope.")
    session_auth_hash = ""
    if hasattr(user, "get_session_auth_hash"):
        session_auth_hash = user.get_session_auth_hash()
    if SESSION_KEY in session:
        if _session_user_id(session) != user.pk or (
            session_auth_hash
            and not constant_time_compare(session.get(HASH_SESSION_KEY, ""), session_auth_hash)
        ):
            # Someone else was logged in: start from an empty session.
            session.flush()
    else:
        # New key on privilege change, against session fixation.
        session.cycle_key()
    try:
        backend = backend or user.backend
    except AttributeError:
        backends = django_auth._get_backends(return_tuples=True)  # type: ignore[attr-defined]
        if len(backends) != 1:
            raise ValueError(
                "You have multiple authentication backends configured and therefore must "
                "provide the `backend` argument or set the `backend` attribute on the user."
            ) from None
        backend = backends[0][1]
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = session_auth_hash
    scope["user"] = user
    user_logged_in.send(sender=user.__class__, request=None, user=user)


login = database_sync_to_async(_login_sync)
login.__doc__ = "Persist ``user`` in the scope's session (the session is not saved here)."


def _logout_sync(scope: Scope) -> None:
    if "session" not in scope:
        raise ValueError(_NO_SESSION)
    user = scope.get("user")
    if getattr(user, "is_authenticated", True) is False:
        user = None
    # Nobody was logged in: no user_logged_out (receivers expect a user), as upstream.
    if user is not None:
        user_logged_out.send(sender=user.__class__, request=None, user=user)
    scope["session"].flush()
    if "user" in scope:
        scope["user"] = _anonymous_user()


logout = database_sync_to_async(_logout_sync)
logout.__doc__ = "Remove the user from the scope and flush the session."


class UserLazyObject(_LazyBase):
    """Placeholder until ``AuthMiddleware`` has resolved the user."""

    def _setup(self) -> None:
        raise ValueError("Accessing scope user before it is ready.")


class AuthMiddleware(BaseMiddleware):
    """Adds ``scope["user"]`` from the session; needs ``SessionMiddleware`` outside it."""

    def populate_scope(self, scope: Scope) -> None:
        if "session" not in scope:
            raise ValueError(
                "AuthMiddleware cannot find session in scope. SessionMiddleware must be above it."
            )
        if "user" not in scope:
            scope["user"] = UserLazyObject()

    async def resolve_scope(self, scope: Scope) -> None:
        scope["user"]._wrapped = await get_user(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        scope = dict(scope)
        self.populate_scope(scope)
        # type(), not isinstance(): a LazyObject proxies __class__ and would resolve itself.
        if type(scope["user"]) is UserLazyObject:
            await self.resolve_scope(scope)
        return await super().__call__(scope, receive, send)


def AuthMiddlewareStack(inner: Any) -> CookieMiddleware:
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))
