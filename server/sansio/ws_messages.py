"""The ASGI WebSocket messages (ASGI spec, WebSocket 2.4, and the Denial Response extension)
the server builds or reads, as ``TypedDict``s.

Built by the server and returned by ``receive``: :data:`ReceivedEvent`.  Sent by the application
and read by the server: :data:`SendEvent`; those come from application code, so every field is
still checked at run time (:meth:`server.sansio.ws_frames.WebSocketConnection.app_message`);
the types say what the spec allows, not what an app may pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NotRequired, TypedDict


class ConnectEvent(TypedDict):
    type: Literal["websocket.connect"]


class ReceiveEvent(TypedDict):
    """``websocket.receive``: exactly one of ``text`` (a text message) or ``bytes``."""

    type: Literal["websocket.receive"]
    text: NotRequired[str]
    bytes: NotRequired[bytes]


class DisconnectEvent(TypedDict):
    type: Literal["websocket.disconnect"]
    code: int
    reason: str


ReceivedEvent = ConnectEvent | ReceiveEvent | DisconnectEvent

Headers = Iterable[tuple[bytes, bytes]]


class AcceptEvent(TypedDict):
    type: Literal["websocket.accept"]
    subprotocol: NotRequired[str | None]
    headers: NotRequired[Headers]


class SendMessageEvent(TypedDict):
    """``websocket.send``: exactly one of ``text`` / ``bytes`` is not None."""

    type: Literal["websocket.send"]
    text: NotRequired[str | None]
    bytes: NotRequired[bytes | None]


class CloseEvent(TypedDict):
    type: Literal["websocket.close"]
    code: NotRequired[int]
    reason: NotRequired[str | None]


class ResponseStartEvent(TypedDict):
    type: Literal["websocket.http.response.start"]
    status: int
    headers: NotRequired[Headers]


class ResponseBodyEvent(TypedDict):
    type: Literal["websocket.http.response.body"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


SendEvent = AcceptEvent | SendMessageEvent | CloseEvent | ResponseStartEvent | ResponseBodyEvent
