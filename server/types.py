"""The ASGI 3 types of this server: scopes, messages and the application callable, in one place.

Every scope and message is a ``TypedDict`` (a plain ``dict`` at run time: no cost) whose keys
follow the ASGI specification (HTTP and WebSocket 2.4 with the Denial Response, Path Send,
Zero Copy Send and HTTP Trailers extensions; Lifespan 2.0):

* scopes the server builds: :class:`HTTPScope`, :class:`WebSocketScope`, :class:`LifespanScope`;
* messages the server builds and ``receive`` returns: :data:`HTTPReceiveEvent`,
  :data:`WebSocketReceiveEvent`, :data:`LifespanReceiveEvent`;
* messages the application passes to ``send``, which the server reads: :data:`HTTPSendEvent`,
  :data:`WebSocketSendEvent`, :data:`LifespanSendEvent`.

Messages from the application are typed as what the specification allows, not as what an
application may actually pass: the server still checks the fields it reads at run time
(``server.sansio.response``, ``server.sansio.ws_frames``, ``server.lifespan``) and refuses a
wrong value with an error.  :data:`Message` is the untyped view, for code that passes messages
on without reading them.
"""

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, NotRequired, Protocol, TypedDict

# --- shared pieces ----------------------------------------------------------------------

Headers = Iterable[tuple[bytes, bytes]]
"""Header fields as the application may give them (ASGI: an iterable of ``[name, value]``)."""

Address = tuple[str, int]


class ASGIVersions(TypedDict):
    version: str
    spec_version: str


# --- scopes -----------------------------------------------------------------------------


class _ConnectionScope(TypedDict):
    """What the ``http`` and ``websocket`` scopes share.  ``headers`` is the server's own list,
    lowercased names in order, which the application may change."""

    asgi: ASGIVersions
    http_version: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: list[tuple[bytes, bytes]]
    client: Address | None
    server: Address | None
    state: dict[str, Any]
    extensions: NotRequired[dict[str, dict[str, Any]]]


class HTTPScope(_ConnectionScope):
    """``http`` connection scope (ASGI HTTP spec)."""

    type: Literal["http"]
    method: str


class WebSocketScope(_ConnectionScope):
    """``websocket`` connection scope (ASGI WebSocket spec).  ``subprotocols`` and
    ``extensions`` are added by the WebSocket protocol once it has checked the handshake."""

    type: Literal["websocket"]
    subprotocols: NotRequired[list[str]]


class LifespanScope(TypedDict):
    """``lifespan`` scope; ``state`` is the dict each connection scope gets a copy of."""

    type: Literal["lifespan"]
    asgi: ASGIVersions
    state: dict[str, Any]


Scope = HTTPScope | WebSocketScope | LifespanScope


# --- HTTP messages ----------------------------------------------------------------------


class HTTPRequestEvent(TypedDict):
    type: Literal["http.request"]
    body: bytes
    more_body: bool


class HTTPDisconnectEvent(TypedDict):
    type: Literal["http.disconnect"]


HTTPReceiveEvent = HTTPRequestEvent | HTTPDisconnectEvent


class HTTPResponseStartEvent(TypedDict):
    type: Literal["http.response.start"]
    status: int
    headers: NotRequired[Headers]
    trailers: NotRequired[bool]


class HTTPResponseBodyEvent(TypedDict):
    type: Literal["http.response.body"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


class HTTPResponseTrailersEvent(TypedDict):
    type: Literal["http.response.trailers"]
    headers: NotRequired[Headers]
    more_trailers: NotRequired[bool]


class HTTPResponsePathsendEvent(TypedDict):
    """``http.response.pathsend`` (Path Send extension): the whole body from a file path."""

    type: Literal["http.response.pathsend"]
    path: str


class FileLike(Protocol):
    """What ``http.response.zerocopysend`` needs of its ``file``: a descriptor to send from."""

    def fileno(self) -> int: ...


class HTTPResponseZerocopysendEvent(TypedDict):
    """``http.response.zerocopysend`` (Zero Copy Send extension): body bytes from an open file,
    ``count`` bytes from ``offset`` (defaults: to the end, from the current position)."""

    type: Literal["http.response.zerocopysend"]
    file: FileLike
    offset: NotRequired[int | None]
    count: NotRequired[int | None]
    more_body: NotRequired[bool]


HTTPSendEvent = (
    HTTPResponseStartEvent
    | HTTPResponseBodyEvent
    | HTTPResponseTrailersEvent
    | HTTPResponsePathsendEvent
    | HTTPResponseZerocopysendEvent
)


# --- WebSocket messages -----------------------------------------------------------------


class WebSocketConnectEvent(TypedDict):
    type: Literal["websocket.connect"]


class WebSocketReceiveDataEvent(TypedDict):
    """``websocket.receive``: exactly one of ``text`` (a text message) or ``bytes``."""

    type: Literal["websocket.receive"]
    text: NotRequired[str]
    bytes: NotRequired[bytes]


class WebSocketDisconnectEvent(TypedDict):
    type: Literal["websocket.disconnect"]
    code: int
    reason: str


WebSocketReceiveEvent = WebSocketConnectEvent | WebSocketReceiveDataEvent | WebSocketDisconnectEvent


class WebSocketAcceptEvent(TypedDict):
    type: Literal["websocket.accept"]
    subprotocol: NotRequired[str | None]
    headers: NotRequired[Headers]


class WebSocketSendDataEvent(TypedDict):
    """``websocket.send``: exactly one of ``text`` / ``bytes`` is not None."""

    type: Literal["websocket.send"]
    text: NotRequired[str | None]
    bytes: NotRequired[bytes | None]


class WebSocketCloseEvent(TypedDict):
    type: Literal["websocket.close"]
    code: NotRequired[int]
    reason: NotRequired[str | None]


class WebSocketResponseStartEvent(TypedDict):
    """``websocket.http.response.start`` (Denial Response extension): an HTTP response
    instead of the 101."""

    type: Literal["websocket.http.response.start"]
    status: int
    headers: NotRequired[Headers]


class WebSocketResponseBodyEvent(TypedDict):
    type: Literal["websocket.http.response.body"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


WebSocketSendEvent = (
    WebSocketAcceptEvent
    | WebSocketSendDataEvent
    | WebSocketCloseEvent
    | WebSocketResponseStartEvent
    | WebSocketResponseBodyEvent
)


# --- lifespan messages ------------------------------------------------------------------


class LifespanStartupEvent(TypedDict):
    type: Literal["lifespan.startup"]


class LifespanShutdownEvent(TypedDict):
    type: Literal["lifespan.shutdown"]


LifespanReceiveEvent = LifespanStartupEvent | LifespanShutdownEvent


class LifespanStartupCompleteEvent(TypedDict):
    type: Literal["lifespan.startup.complete"]


class LifespanStartupFailedEvent(TypedDict):
    type: Literal["lifespan.startup.failed"]
    message: NotRequired[str]


class LifespanShutdownCompleteEvent(TypedDict):
    type: Literal["lifespan.shutdown.complete"]


class LifespanShutdownFailedEvent(TypedDict):
    type: Literal["lifespan.shutdown.failed"]
    message: NotRequired[str]


LifespanSendEvent = (
    LifespanStartupCompleteEvent
    | LifespanStartupFailedEvent
    | LifespanShutdownCompleteEvent
    | LifespanShutdownFailedEvent
)


# --- the application --------------------------------------------------------------------

ReceiveEvent = HTTPReceiveEvent | WebSocketReceiveEvent | LifespanReceiveEvent
SendEvent = HTTPSendEvent | WebSocketSendEvent | LifespanSendEvent

Message = Mapping[str, Any]
"""Any message, unread: what a layer that only passes messages on may use."""

Receive = Callable[[], Awaitable[ReceiveEvent]]
Send = Callable[[SendEvent], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
