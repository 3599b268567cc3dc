"""``WebsocketCommunicator``: drive a WebSocket ASGI app in tests without a server."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlparse

from .application import ApplicationCommunicator


class FrameArgumentError(AssertionError, TypeError, ValueError):
    """Misuse of ``send_to``.  Upstream reports it with ``assert``, so tests may expect an
    ``AssertionError``; it is a ``TypeError``/``ValueError`` too, being about the arguments."""


class WebsocketCommunicator(ApplicationCommunicator):
    """Connect, exchange frames and disconnect, as a WebSocket client would."""

    def __init__(
        self,
        application: Any,
        path: str,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
        subprotocols: Iterable[str] | None = None,
        spec_version: str | None = None,
    ) -> None:
        if not isinstance(path, str):
            raise TypeError(f"Expected str, got {type(path).__name__}")
        parsed = urlparse(path)
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": spec_version or "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": unquote(parsed.path),
            "raw_path": parsed.path.encode("latin-1"),
            "query_string": parsed.query.encode("latin-1"),
            "root_path": "",
            "headers": list(headers or []),
            "subprotocols": list(subprotocols or []),
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "extensions": {},
        }
        if spec_version:
            self.scope["spec_version"] = spec_version
        self.response_headers: list[tuple[bytes, bytes]] | None = None
        super().__init__(application, self.scope)

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:  # noqa: ASYNC109 - upstream API
        """``(True, subprotocol)`` when accepted, ``(False, close_code)`` when refused."""
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        if response["type"] != "websocket.accept":
            raise AssertionError(f"Expected websocket.accept or close, got {response['type']!r}")
        self.response_headers = list(response.get("headers", []))
        return True, response.get("subprotocol")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Upstream's assertion messages; unlike upstream, an empty text or bytes frame is allowed
        # (upstream tests truthiness, so send_to(text_data="") fails there).
        if (text_data is None) == (bytes_data is None):
            raise FrameArgumentError("You must supply exactly one of text_data or bytes_data")
        if text_data is not None:
            if not isinstance(text_data, str):
                raise FrameArgumentError("The text_data argument must be a str")
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            if not isinstance(bytes_data, bytes):
                raise FrameArgumentError("The bytes_data argument must be bytes")
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def send_json_to(self, data: Any) -> None:
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str | bytes:  # noqa: ASYNC109 - upstream API
        """The next frame's payload (str for text, bytes for binary).

        Failures are ``AssertionError`` with upstream's messages (Channels 4.2+), which tests
        written for Channels may match.
        """
        response = await self.receive_output(timeout)
        if response["type"] != "websocket.send":
            raise AssertionError(f"Expected type 'websocket.send', but was '{response['type']}'")
        # ASGI lets a send carry the unused key as None; only the one with a value counts.
        text, data = response.get("text"), response.get("bytes")
        if (text is None) == (data is None):
            raise AssertionError("The response needs exactly one of 'text' or 'bytes'")
        if text is not None:
            if not isinstance(text, str):
                raise AssertionError(f"Text frame payload is not str, it is {type(text)}")
            return text
        if not isinstance(data, bytes):
            raise AssertionError(f"Binary frame payload is not bytes, it is {type(data)}")
        return data

    async def receive_json_from(self, timeout: float = 1) -> Any:  # noqa: ASYNC109 - upstream API
        payload = await self.receive_from(timeout)
        if not isinstance(payload, str):
            raise AssertionError(f"JSON data is not a text frame, it is {type(payload)}")
        return json.loads(payload)

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:  # noqa: ASYNC109 - upstream API
        """Tell the app the client went away and wait for it to finish."""
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)
