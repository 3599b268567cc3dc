"""Reject WebSocket handshakes from unexpected origins (cross-site WebSocket hijacking)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import ParseResult, urlparse

from django.conf import settings
from django.utils.http import is_same_domain

from ..generic.websocket import AsyncWebsocketConsumer
from ..utils import Receive, Scope, Send

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class WebsocketDenier(AsyncWebsocketConsumer):
    """Closes the handshake; servers answer a close-before-accept with HTTP 403."""

    channel_layer_alias = None  # never needs a channel name

    async def connect(self) -> None:
        await self.close()


def _port(url: ParseResult) -> int | None:
    try:
        port = url.port
    except ValueError:
        return None
    return port if port is not None else _DEFAULT_PORTS.get(url.scheme)


class OriginValidator:
    """Only lets WebSocket connections through whose Origin header matches ``allowed_origins``.

    Patterns: ``"*"`` (anything, even no Origin), a host as in ``ALLOWED_HOSTS`` (``"example.com"``,
    ``".example.com"`` for the domain and every subdomain; any scheme and port), or a full
    origin ``"https://example.com:8443"`` (scheme, host and port must match; default ports
    are implied).
    """

    def __init__(self, application: Any, allowed_origins: Iterable[str]) -> None:
        self.application = application
        self.allowed_origins = list(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("You cannot use OriginValidator on a non-WebSocket connection")
        parsed_origin: ParseResult | None = None
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                try:
                    parsed_origin = urlparse(value.decode("latin-1").strip())
                except ValueError:
                    parsed_origin = None
                break
        if self.valid_origin(parsed_origin):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None and "*" not in self.allowed_origins:
            return False
        return self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin: ParseResult | None) -> bool:
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern)
            for pattern in self.allowed_origins
        )

    def match_allowed_origin(self, parsed_origin: ParseResult | None, pattern: str) -> bool:
        if parsed_origin is None or not parsed_origin.hostname:
            return False  # includes the opaque origin "null"
        if _port(parsed_origin) is None and parsed_origin.scheme in _DEFAULT_PORTS:
            return False  # malformed port: not a serialized origin (RFC 6454 §6.2)
        pattern = pattern.lower()
        parsed_pattern = urlparse(pattern)
        if not parsed_pattern.scheme or not parsed_pattern.netloc:
            # Host-only pattern: scheme and port are free, unless the pattern names a port.
            host_pattern = urlparse("//" + pattern)
            hostname = host_pattern.hostname or pattern
            if pattern.startswith(".") and not hostname.startswith("."):
                hostname = "." + hostname  # keep the "domain and subdomains" marker
            try:
                wanted_port = host_pattern.port
            except ValueError:
                return False
            if wanted_port is not None and _port(parsed_origin) != wanted_port:
                return False
            return bool(is_same_domain(parsed_origin.hostname, hostname))
        if parsed_pattern.hostname is None:
            return False
        return (
            parsed_pattern.scheme == parsed_origin.scheme
            and _port(parsed_pattern) == _port(parsed_origin)
            and is_same_domain(parsed_origin.hostname, parsed_pattern.hostname)
        )

    def get_origin_port(self, origin: ParseResult) -> int | None:
        return _port(origin)


class _AllowedHostsValidator(OriginValidator):
    """Reads ``ALLOWED_HOSTS`` per connection rather than once: the project's ``asgi.py`` is
    often imported before the settings a test runs under (``override_settings``, or the host
    ``ChannelsLiveServerTestCase`` adds) are in force."""

    def __init__(self, application: Any) -> None:
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:  # type: ignore[override]
        allowed_hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed_hosts:
            allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
        return allowed_hosts


def AllowedHostsOriginValidator(application: Any) -> OriginValidator:
    """``OriginValidator`` using ``settings.ALLOWED_HOSTS`` (localhost allowed in DEBUG)."""
    return _AllowedHostsValidator(application)
