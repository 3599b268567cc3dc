"""The two exceptions the WebSocket side of the server raises to an application's ``send``."""

from __future__ import annotations


class ASGIWebSocketError(RuntimeError):
    """The application sent a message that is invalid or illegal in the current state."""


class ClientDisconnected(OSError):
    """``send`` on a connection that is already closed (ASGI WebSocket spec 2.4)."""
