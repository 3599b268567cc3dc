"""Exceptions raised or understood by consumers, routing and channel layers."""

from __future__ import annotations


class RequestAborted(Exception):
    """The client went away before the request body was fully received."""


class RequestTimeout(RequestAborted):
    """Reading the request body took too long."""


class InvalidChannelLayerError(ValueError):
    """``CHANNEL_LAYERS`` names a backend that is missing or misconfigured."""


class AcceptConnection(Exception):
    """Raised inside a WebSocket ``connect`` handler to accept the connection."""


class DenyConnection(Exception):
    """Raised inside a WebSocket ``connect`` handler to reject the connection (close 403)."""


class ChannelFull(Exception):
    """A ``send`` hit the channel's capacity."""


class MessageTooLarge(Exception):
    """A message is bigger than the channel layer accepts."""


class StopConsumer(Exception):
    """Raised by a handler to end the consumer's receive loop cleanly."""
