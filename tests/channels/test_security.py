"""OriginValidator / AllowedHostsOriginValidator: which Origin headers get through."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import (
    AllowedHostsOriginValidator,
    OriginValidator,
    WebsocketDenier,
)
from channels.testing import ApplicationCommunicator, WebsocketCommunicator


class Hello(AsyncWebsocketConsumer):
    channel_layer_alias = None


async def connects(app: Any, origin: bytes | None) -> bool:
    headers = [(b"origin", origin)] if origin is not None else []
    comm = WebsocketCommunicator(app, "/", headers=headers)
    connected, code = await comm.connect()
    if connected:
        await comm.disconnect()
    else:
        assert code == 1000
        await comm.disconnect()  # what a server reports after refusing the handshake
    return connected


@pytest.mark.parametrize(
    ("allowed", "origin", "expected"),
    [
        (["example.com"], b"http://example.com", True),
        (["example.com"], b"https://example.com:8443", True),  # host pattern: any scheme/port
        (["example.com"], b"http://sub.example.com", False),
        (["example.com"], b"http://example.com.evil.net", False),
        ([".example.com"], b"http://example.com", True),
        ([".example.com"], b"https://a.b.example.com", True),
        ([".example.com"], b"https://badexample.com", False),
        (["example.com:8080"], b"http://example.com:8080", True),
        (["example.com:8080"], b"http://example.com:9090", False),
        (["http://example.com"], b"http://example.com", True),
        (["http://example.com"], b"http://example.com:80", True),  # default port implied
        (["http://example.com"], b"https://example.com", False),  # scheme must match
        (["https://example.com"], b"https://example.com:443", True),
        (["https://example.com:8443"], b"https://example.com", False),
        (["https://.example.com"], b"https://chat.example.com", True),
        (["*"], b"http://anything.at.all:1234", True),
        (["*"], None, True),
        (["example.com"], None, False),
        (["example.com"], b"null", False),
        (["example.com"], b"not a url at all", False),
        (["EXAMPLE.com"], b"http://Example.COM", True),
        ([], b"http://example.com", False),
        (["[::1]"], b"http://[::1]:8000", True),
        (["example.com"], b"http://example.com:99999", False),
        (["*"], b"http://example.com:99999", True),
    ],
)
async def test_origin_patterns(allowed: list[str], origin: bytes | None, expected: bool) -> None:
    assert await connects(OriginValidator(Hello.as_asgi(), allowed), origin) is expected


async def test_allowed_hosts_validator_uses_settings() -> None:
    app = AllowedHostsOriginValidator(Hello.as_asgi())
    assert await connects(app, b"http://testserver")
    assert await connects(app, b"https://shop.example.org")  # ".example.org" in ALLOWED_HOSTS
    assert not await connects(app, b"http://evil.com")
    with override_settings(ALLOWED_HOSTS=[], DEBUG=True):
        app = AllowedHostsOriginValidator(Hello.as_asgi())
        assert await connects(app, b"http://localhost:8000")
        assert await connects(app, b"http://127.0.0.1:3000")
        assert not await connects(app, b"http://example.com")


async def test_origin_validator_refuses_other_scope_types() -> None:
    comm = ApplicationCommunicator(
        OriginValidator(Hello.as_asgi(), ["*"]), {"type": "http", "headers": []}
    )
    with pytest.raises(ValueError, match="non-WebSocket"):
        await comm.wait()


async def test_denier_closes_before_accepting() -> None:
    comm = WebsocketCommunicator(WebsocketDenier.as_asgi(), "/")
    assert await comm.connect() == (False, 1000)
    await comm.disconnect()
