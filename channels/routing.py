"""Routers: pick the application for a connection by scope type, URL path or channel name."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from asgiref.compatibility import guarantee_single_callable
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern, URLPattern, URLResolver

from .checks import validate_channel_layers
from .utils import ASGIApplication, Receive, Scope, Send


def _asgi3(app: Any) -> ASGIApplication:
    """Accept ASGI 2 (double-callable) apps too, normalised once at construction."""
    single: ASGIApplication = guarantee_single_callable(app)  # type: ignore[no-untyped-call]
    return single


def get_default_application() -> Any:
    """The application named by ``settings.ASGI_APPLICATION`` ("dotted.module.attribute")."""
    try:
        path, name = settings.ASGI_APPLICATION.rsplit(".", 1)
    except (ValueError, AttributeError) as exc:
        raise ImproperlyConfigured("Cannot find ASGI_APPLICATION setting.") from exc
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"Cannot import ASGI_APPLICATION module {path!r}") from exc
    try:
        application = getattr(module, name)
    except AttributeError as exc:
        raise ImproperlyConfigured(
            f"Cannot find {name!r} in ASGI_APPLICATION module {path}"
        ) from exc
    # runserver, runworker and the live-server test case start here.
    validate_channel_layers()
    return application


class _LazyDjangoHttp:
    """Django's own ASGI handler, built on first use (Channels 2-era default for "http")."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if self._app is None:
            from django.core.asgi import get_asgi_application

            self._app = get_asgi_application()
        return await self._app(scope, receive, send)


class ProtocolTypeRouter:
    """Routes on ``scope["type"]`` ("http", "websocket", "lifespan", "channel" ...)."""

    def __init__(self, application_mapping: Mapping[str, Any]) -> None:
        mapping = dict(application_mapping)
        if "http" not in mapping:
            warnings.warn(
                "A default handler for HTTP is deprecated and will be removed: add "
                "'\"http\": get_asgi_application()' (from django.core.asgi) to your "
                "ProtocolTypeRouter.",
                DeprecationWarning,
                stacklevel=2,
            )
            mapping["http"] = _LazyDjangoHttp()
        self.application_mapping = mapping
        # A CHANNEL_LAYERS BACKEND that cannot be imported fails here, while asgi.py is being
        # imported at server start-up, rather than as a 500 at the first WebSocket handshake.
        validate_channel_layers()
        # Normalised once so each connection does a single dict lookup.
        self._apps: dict[str, ASGIApplication] = {key: _asgi3(app) for key, app in mapping.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        app = self._apps.get(scope["type"])
        if app is None:
            raise ValueError(f"No application configured for scope type {scope['type']!r}")
        # Routers hand back what the inner application returns, as upstream.
        return await app(scope, receive, send)


def _strip_root_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    # ASGI: "path" includes "root_path"; routes are written relative to the mount point.
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    # Django's own resolver consumes the leading "/" before matching urlpatterns.
    return path.removeprefix("/")


class URLRouter:
    """Routes on the URL path using Django ``path()``/``re_path()`` entries.

    A route may point at another ``URLRouter``: its pattern then matches a prefix only and the
    rest of the path is handed down in ``scope["path_remaining"]``.  Captured values accumulate
    in ``scope["url_route"]`` as ``{"args": (...), "kwargs": {...}}``.
    """

    # Marks this app as doing further routing, so an outer router matches a prefix only.
    _path_routing = True

    def __init__(self, routes: Iterable[URLPattern | URLResolver]) -> None:
        self.routes = list(routes)
        self._apps: list[tuple[Any, ASGIApplication]] = []
        for route in self.routes:
            if isinstance(route, URLResolver) or not callable(getattr(route, "callback", None)):
                raise ImproperlyConfigured(
                    f"{route}: include() is not supported in URLRouter. Use nested URLRouter "
                    f"instances instead."
                )
            callback: Any = route.callback
            if getattr(callback, "_path_routing", False) is True:
                route.pattern = self._prefix_pattern(route.pattern)
            self._apps.append((route, _asgi3(callback)))

    @staticmethod
    def _prefix_pattern(pattern: Any) -> Any:
        if isinstance(pattern, RegexPattern):
            return RegexPattern(pattern._regex, pattern.name, is_endpoint=False)  # type: ignore[attr-defined]
        if isinstance(pattern, RoutePattern):
            return RoutePattern(pattern._route, pattern.name, is_endpoint=False)  # type: ignore[attr-defined]
        raise ImproperlyConfigured(f"Unsupported pattern type: {type(pattern).__name__}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        nested = "path_remaining" in scope
        path: str = scope["path_remaining"] if nested else _strip_root_path(scope)
        for route, app in self._apps:
            match = route.pattern.match(path)
            if not match:
                continue
            remaining, args, kwargs = match
            # Extra kwargs given to path()/re_path() (``path("x/", app, {"k": 1})``).
            kwargs = {**kwargs, **route.default_args}
            outer = scope.get("url_route") or {}
            inner_scope = dict(scope)
            inner_scope["path_remaining"] = remaining
            inner_scope["url_route"] = {
                "args": tuple(outer.get("args", ())) + tuple(args),
                "kwargs": {**outer.get("kwargs", {}), **kwargs},
            }
            try:
                return await app(inner_scope, receive, send)
            except Resolver404:
                # A nested router found nothing under this prefix: try the next route.
                if getattr(route.callback, "_path_routing", False) is not True:
                    raise
                continue
        if nested:
            raise Resolver404(f"No route found for path {path!r}.")
        raise ValueError(f"No route found for path {path!r}.")


class ChannelNameRouter:
    """Routes ``channel`` scopes (from ``runworker``) on ``scope["channel"]``."""

    def __init__(self, application_mapping: Mapping[str, Any]) -> None:
        self.application_mapping = dict(application_mapping)
        self._apps = {k: _asgi3(v) for k, v in self.application_mapping.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if "channel" not in scope:
            raise ValueError(
                "ChannelNameRouter got a scope without a 'channel' key. Did you make sure it's "
                "only being used for 'channel' type messages?"
            )
        app = self._apps.get(scope["channel"])
        if app is None:
            raise ValueError(f"No application configured for channel name {scope['channel']!r}")
        return await app(scope, receive, send)
