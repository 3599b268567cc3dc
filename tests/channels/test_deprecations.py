"""Channels 3.0 upgrade path: old spellings still work but say what to change."""

from __future__ import annotations

from typing import Any

import pytest

from channels.http import AsgiHandler
from channels.routing import ProtocolTypeRouter
from channels.testing import HttpCommunicator


async def noop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("not for http")


async def test_protocol_type_router_without_http_warns_and_serves_django(db: None) -> None:
    with pytest.warns(DeprecationWarning, match="get_asgi_application"):
        router = ProtocolTypeRouter({"websocket": noop})
    response = await HttpCommunicator(router, "GET", "/").get_response(timeout=5)
    assert response["status"] == 200
    assert response["body"] == b"django says hi"


async def test_asgi_handler_warns_and_works(db: None) -> None:
    with pytest.warns(DeprecationWarning, match=r"django\.core\.asgi\.get_asgi_application"):
        handler = AsgiHandler()
    response = await HttpCommunicator(handler, "GET", "/").get_response(timeout=5)
    assert response["status"] == 200
    assert response["body"] == b"django says hi"
