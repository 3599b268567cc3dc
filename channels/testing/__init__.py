"""Test helpers: drive consumers without a server, or run a live server for end-to-end tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .application import ApplicationCommunicator
from .http import HttpCommunicator
from .websocket import WebsocketCommunicator

if TYPE_CHECKING:
    from .live import ChannelsLiveServerTestCase

__all__ = [
    "ApplicationCommunicator",
    "ChannelsLiveServerTestCase",
    "HttpCommunicator",
    "WebsocketCommunicator",
]


def __getattr__(name: str) -> Any:
    # The live server pulls in django.test and staticfiles; import it only when asked for.
    if name == "ChannelsLiveServerTestCase":
        from .live import ChannelsLiveServerTestCase

        return ChannelsLiveServerTestCase
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
