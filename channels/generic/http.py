"""``AsyncHttpConsumer``: collect the request body, then ``handle(body)`` sends the response."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..consumer import AsyncConsumer
from ..db import close_old_connections_if_needed
from ..exceptions import StopConsumer

HeaderValue = bytes | str
HeadersArg = Mapping[HeaderValue, HeaderValue] | Iterable[tuple[HeaderValue, HeaderValue]]


def _to_bytes(value: HeaderValue) -> bytes:
    # Header bytes are latin-1 on the wire (RFC 9110 §5.5); str is accepted for convenience.
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def _normalize_headers(headers: HeadersArg | None) -> list[tuple[bytes, bytes]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(_to_bytes(name), _to_bytes(value)) for name, value in items]


class AsyncHttpConsumer(AsyncConsumer):
    """Override ``handle(body)``; it runs once the whole request body has arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body: list[bytes] = []

    async def send_headers(self, *, status: int = 200, headers: HeadersArg | None = None) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": _normalize_headers(headers),
            }
        )

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        if not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError(f"Response body must be bytes, got {type(body).__name__}")
        await self.send({"type": "http.response.body", "body": bytes(body), "more_body": more_body})

    async def send_response(self, status: int, body: bytes, **kwargs: Any) -> None:
        await self.send_headers(status=status, **kwargs)
        await self.send_body(body)

    async def handle(self, body: bytes) -> None:
        raise NotImplementedError("Subclasses of AsyncHttpConsumer must provide a handle() method.")

    async def disconnect(self) -> None:
        pass

    async def http_request(self, message: dict[str, Any]) -> None:
        chunk = message.get("body")
        if chunk:
            self.body.append(chunk)
        if not message.get("more_body", False):
            try:
                await self.handle(b"".join(self.body))
            finally:
                await self.disconnect()
                # The end of the request, as for a Django view (Channels 4.2).
                await close_old_connections_if_needed()
            raise StopConsumer()

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        await self.disconnect()
        await close_old_connections_if_needed()
        raise StopConsumer()
