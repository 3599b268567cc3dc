"""``HttpCommunicator``: send one HTTP request to an ASGI app and collect the response."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlparse

from .application import ApplicationCommunicator


class HttpCommunicator(ApplicationCommunicator):
    """``await HttpCommunicator(app, "GET", "/path?q=1").get_response()`` ->
    ``{"status": int, "headers": [...], "body": bytes}``."""

    def __init__(
        self,
        application: Any,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        parsed = urlparse(path)
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": unquote(parsed.path),
            "raw_path": parsed.path.encode("latin-1"),
            "query_string": parsed.query.encode("latin-1"),
            "root_path": "",
            "headers": list(headers or []),
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        if not isinstance(body, bytes):
            raise TypeError(f"body must be bytes, got {type(body).__name__}")
        self.body = body
        self.sent_request = False
        super().__init__(application, self.scope)

    async def get_response(self, timeout: float = 1) -> dict[str, Any]:  # noqa: ASYNC109 - upstream API
        """Send the request (once) and wait for the complete response."""
        if not self.sent_request:
            self.sent_request = True
            await self.send_input({"type": "http.request", "body": self.body})
        start = await self.receive_output(timeout)
        if start["type"] != "http.response.start":
            raise AssertionError(f"Expected http.response.start, got {start['type']!r}")
        response: dict[str, Any] = {
            "status": start["status"],
            "headers": list(start.get("headers", [])),
        }
        chunks: list[bytes] = []
        while True:
            message = await self.receive_output(timeout)
            if message["type"] != "http.response.body":
                raise AssertionError(f"Expected http.response.body, got {message['type']!r}")
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        response["body"] = b"".join(chunks)
        await self.wait(timeout)
        return response
