"""HTTP responses given on a WebSocket endpoint instead of the 101.

Three kinds, all ``Connection: close`` (the connection was upgrade-or-nothing, so after a refusal
it is never reused), all serialised by the HTTP response serialiser
(:class:`server.sansio.response.ResponseState`), so header validation, status lines, framing and
chunked coding exist once for HTTP and WebSocket:

* :func:`refusal`: a complete response the server writes itself: the 400/426 of an invalid
  handshake, 403 when the application closes before accepting, 500 when it crashes, 503 at
  shutdown.
* :class:`DenialResponse`: the ASGI *WebSocket Denial Response* extension
  (``websocket.http.response.start`` / ``.body``): the application's own status, headers and a
  body that may be streamed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.sansio.response import ASGIProtocolError, ResponseState
from server.sansio.ws_errors import ASGIWebSocketError
from server.types import WebSocketResponseBodyEvent, WebSocketResponseStartEvent


def refusal(
    status: int,
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    default_headers: bytes = b"",
) -> bytes:
    """A complete ``Connection: close`` response with a Content-Length body.

    ``default_headers`` are the server's own header lines (Date, Server), as for HTTP.
    """
    response = ResponseState(keep_alive=False)
    response.start({"status": status, "headers": headers}, default_headers)
    return b"".join(response.body(body, False))


class DenialResponse:
    """``websocket.http.response.*`` for one connection, one transport write per message.

    The head goes out with the first body message (as for ``http.response.*``); a body sent in
    several messages without a Content-Length is chunked (RFC 9112 section 7.1).
    """

    __slots__ = ("_response",)

    def __init__(self, message: WebSocketResponseStartEvent, default_headers: bytes = b"") -> None:
        """``websocket.http.response.start``; raises :class:`ASGIWebSocketError` if invalid."""
        headers = _checked_pairs(message.get("headers"))
        response = ResponseState(keep_alive=False)
        try:
            response.start({"status": message.get("status"), "headers": headers}, default_headers)
        except (ASGIProtocolError, TypeError, ValueError) as exc:
            # ASGIProtocolError names "http.response.start"; say which message it was.
            detail = str(exc).replace("http.response.start", "websocket.http.response.start")
            raise ASGIWebSocketError(detail or "invalid websocket.http.response.start") from None
        self._response = response

    def body(self, message: WebSocketResponseBodyEvent) -> list[Any]:
        """``websocket.http.response.body``: the parts for one write."""
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise ASGIWebSocketError("websocket.http.response.body 'body' must be bytes")
        try:
            return self._response.body(body, bool(message.get("more_body", False)))
        except ASGIProtocolError as exc:
            raise ASGIWebSocketError(str(exc)) from None

    @property
    def head_sent(self) -> bool:
        return self._response.head_sent

    @property
    def complete(self) -> bool:
        return self._response.complete


def _checked_pairs(headers: Any) -> list[tuple[Any, ...]]:
    """The app's headers as a list of pairs, with at most one Content-Length of digits only
    (RFC 9110 section 8.6).

    Stricter than ``ResponseState``, which takes the last of several values and reads them with
    ``int()`` (so ``+3`` or ``1_0`` pass): a denial with such a value is the app's error.
    Everything else (names are tokens, no CR/LF/NUL in values) is checked by ``ResponseState``.
    """
    if headers is None:
        return []
    seen = False
    try:
        pairs = [tuple(pair) for pair in headers]
    except TypeError:
        raise ASGIWebSocketError("headers must be an iterable of [name, value] pairs") from None
    for pair in pairs:
        if len(pair) != 2:
            raise ASGIWebSocketError("each header must be a [name, value] pair")
        name, value = pair
        if isinstance(name, bytes | bytearray) and name.lower() == b"content-length":
            if not isinstance(value, bytes | bytearray) or not value.strip().isdigit():
                raise ASGIWebSocketError(f"invalid denial content-length {value!r}")
            if seen:
                raise ASGIWebSocketError("denial response has several content-length headers")
            seen = True
    return pairs
