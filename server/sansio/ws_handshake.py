"""The WebSocket opening handshake, server side (RFC 6455 section 4.2), without I/O.

* :func:`parse_handshake` validates the upgrade request headers (§4.2.1) that the HTTP protocol
  already parsed (we never re-parse the request); :class:`HandshakeError` carries the 400/426
  answer.
* :func:`negotiate_deflate` picks the permessage-deflate parameters (RFC 7692 section 5).
* :func:`accept_response` checks a ``websocket.accept`` message against the request and builds
  the 101 (§4.2.2).

A refusal instead of the 101 is in :mod:`server.sansio.ws_denial`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from wsproto.extensions import PerMessageDeflate

from server.sansio.response import _bad_field
from server.sansio.ws_denial import refusal
from server.sansio.ws_errors import ASGIWebSocketError
from server.types import WebSocketAcceptEvent
from server.writer import CRLF, status_line

# RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing.
_ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Header names the server writes itself on a 101; the application may not supply them.
_RESERVED_ACCEPT_HEADERS: Final = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
    }
)

_SWITCHING: Final = status_line(101) + b"upgrade: websocket\r\nconnection: Upgrade\r\n"


class HandshakeError(Exception):
    """The upgrade request is not a valid WebSocket opening handshake (RFC 6455 §4.2.1)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self, default_headers: bytes = b"") -> bytes:
        """The refusal to write; ``default_headers`` are the server's Date/Server lines."""
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"text/plain; charset=utf-8")]
        if self.status == 426:
            # RFC 6455 §4.4: tell the client which version we speak.
            headers.append((b"sec-websocket-version", b"13"))
        return refusal(self.status, headers, self.detail.encode() + b"\n", default_headers)


@dataclass(slots=True)
class Handshake:
    """What the application and the frame layer need from a valid upgrade request."""

    key: bytes
    subprotocols: list[str] = field(default_factory=list)
    extension_offers: list[str] = field(default_factory=list)


def _comma_split(value: bytes) -> list[bytes]:
    return [part.strip() for part in value.split(b",") if part.strip()]


def parse_handshake(headers: Iterable[tuple[bytes, bytes]]) -> Handshake:
    """Validate the client's opening handshake headers (RFC 6455 §4.2.1).

    The request line (GET, HTTP/1.1) was checked by the HTTP protocol before the hand-off.
    Raises :class:`HandshakeError` with 426 for an unsupported version and 400 otherwise.
    """
    host = False
    upgrade: list[bytes] = []
    connection: list[bytes] = []
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[str] = []
    extensions: list[str] = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name == b"host":
            host = True
        elif name == b"upgrade":
            upgrade.extend(t.lower() for t in _comma_split(value))
        elif name == b"connection":
            connection.extend(t.lower() for t in _comma_split(value))
        elif name == b"sec-websocket-key":
            keys.append(value.strip())
        elif name == b"sec-websocket-version":
            versions.append(value.strip())
        elif name == b"sec-websocket-protocol":
            protocols.extend(t.decode("latin-1") for t in _comma_split(value))
        elif name == b"sec-websocket-extensions":
            extensions.extend(t.decode("latin-1") for t in _comma_split(value))
    # §4.2.1 items 2-4: Host, an Upgrade header with "websocket", a Connection header with
    # the "Upgrade" token (both compared case-insensitively).
    if not host:
        raise HandshakeError(400, "missing Host header")
    if b"websocket" not in upgrade:
        raise HandshakeError(400, "missing 'Upgrade: websocket' header")
    if b"upgrade" not in connection:
        raise HandshakeError(400, "missing 'Connection: Upgrade' header")
    # §4.2.1 item 6 / §4.4: exactly version 13, else 426 with the version we support.
    if not versions:
        raise HandshakeError(400, "missing Sec-WebSocket-Version header")
    if versions != [b"13"]:
        raise HandshakeError(426, "unsupported Sec-WebSocket-Version (only 13 is supported)")
    # §4.2.1 item 5: a base64 value that decodes to exactly 16 bytes.
    if len(keys) != 1:
        raise HandshakeError(400, "expected exactly one Sec-WebSocket-Key header")
    try:
        decoded = base64.b64decode(keys[0], validate=True)
    except binascii.Error:
        decoded = b""
    if len(decoded) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes, base64-encoded")
    return Handshake(key=keys[0], subprotocols=protocols, extension_offers=extensions)


def accept_token(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2 item 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())


# ----------------------------------------------------------------------- permessage-deflate

# RFC 7692 §7.1: the parameters a client may put in a permessage-deflate offer, and whether
# each takes a value ("yes"), must not ("no") or may ("maybe": client_max_window_bits alone
# means "I can handle any value you answer").
_DEFLATE_OFFER_PARAMS: Final = {
    "server_no_context_takeover": "no",
    "client_no_context_takeover": "no",
    "server_max_window_bits": "yes",
    "client_max_window_bits": "maybe",
}


def _normalize_deflate_offer(offer: str) -> str | None:
    """The offer rewritten for wsproto, or None if RFC 7692 §5 says to decline it.

    §5: decline an offer with an unknown parameter, an invalid value or a repeated parameter.
    wsproto ignores unknown names and cannot read quoted values, so we check first.
    """
    parts = [p.strip() for p in offer.split(";")]
    out = [parts[0]]
    seen: set[str] = set()
    for param in parts[1:]:
        name, eq, value = param.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]  # §7.1.2.1: a quoted-string form is allowed
        kind = _DEFLATE_OFFER_PARAMS.get(name)
        if kind is None or name in seen:
            return None
        seen.add(name)
        if kind == "no":
            if eq:
                return None
            out.append(name)
        elif not eq:
            if kind == "yes":
                return None
            out.append(name)
        else:
            # §7.1.2: a decimal 8-15 without leading zeros; zlib's raw deflate cannot use 8,
            # so 8 means "not supported" and the offer is declined (wsproto refuses it too).
            if not (value.isdigit() and value[0] != "0" and 9 <= int(value) <= 15):
                return None
            out.append(f"{name}={value}")
    return "; ".join(out)


def negotiate_deflate(offers: Iterable[str]) -> tuple[PerMessageDeflate, str] | None:
    """Accept the first acceptable permessage-deflate offer (RFC 7692 §5).

    Returns the configured extension and the response header element, or None.
    """
    for offer in offers:
        name = offer.split(";", 1)[0].strip().lower()
        if name != PerMessageDeflate.name:
            continue
        normalized = _normalize_deflate_offer(offer)
        if normalized is None:
            continue  # declined: try the next offer
        ext = PerMessageDeflate()  # fresh per offer: accept() mutates it even on refusal
        try:
            params = ext.accept(normalized)
        except ValueError:  # defensive: values were validated above
            continue
        if isinstance(params, str):
            return ext, f"{PerMessageDeflate.name}; {params}" if params else PerMessageDeflate.name
    return None


# ------------------------------------------------------------------------------------ the 101


def _accept_headers(raw: Any) -> list[tuple[bytes, bytes]]:
    """The app's extra 101 headers, checked as for any HTTP response (RFC 9110 §5.1, §5.5)."""
    if raw is None:
        return []
    try:
        pairs = [tuple(item) for item in raw]
    except TypeError:
        raise ASGIWebSocketError("headers must be an iterable of [name, value] pairs") from None
    out = []
    for pair in pairs:
        if len(pair) != 2:
            raise ASGIWebSocketError("each header must be a [name, value] pair")
        name, value = pair
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise ASGIWebSocketError("header names and values must be byte strings")
        name, value = bytes(name), bytes(value)
        if _bad_field(name, value):
            raise ASGIWebSocketError(f"invalid header {name!r}")
        lname = name.lower()
        if lname in _RESERVED_ACCEPT_HEADERS:
            raise ASGIWebSocketError(
                f"websocket.accept must not set {name.decode()!r}; the server sets it"
                + (" (use 'subprotocol')" if lname == b"sec-websocket-protocol" else "")
            )
        out.append((name, value))
    return out


def accept_response(
    handshake: Handshake,
    message: WebSocketAcceptEvent,
    extension_header: str | None,
    server_line: bytes = b"",
) -> bytes:
    """The 101 for ``websocket.accept`` (RFC 6455 §4.2.2), after checking the message.

    ``extension_header`` is the negotiated Sec-WebSocket-Extensions value (or None);
    ``server_line`` the server's own header lines (``server: ...`` and the ``--header``
    lines, see ``server.protocols.common.server_line``); its ``server`` line is left out if
    the app sets one, the others are always written.
    Raises :class:`ASGIWebSocketError` before anything changes if the message is invalid.
    """
    subprotocol = message.get("subprotocol")
    if subprotocol is not None:
        if not isinstance(subprotocol, str):
            raise ASGIWebSocketError("websocket.accept 'subprotocol' must be a str or None")
        # §4.2.2 item 5.5: the server must pick one of the client's offers.
        if subprotocol not in handshake.subprotocols:
            raise ASGIWebSocketError(
                f"subprotocol {subprotocol!r} was not offered by the client "
                f"(offered: {handshake.subprotocols!r})"
            )
    headers = _accept_headers(message.get("headers"))
    parts = [_SWITCHING, b"sec-websocket-accept: ", accept_token(handshake.key), CRLF]
    if subprotocol is not None:
        parts.append(b"sec-websocket-protocol: " + subprotocol.encode("latin-1") + CRLF)
    if extension_header:
        parts.append(b"sec-websocket-extensions: " + extension_header.encode("latin-1") + CRLF)
    if server_line:
        if any(n.lower() == b"server" for n, _ in headers):
            # The app's own Server wins; only that line of ours goes.
            server_line = b"".join(
                line + CRLF
                for line in server_line.split(CRLF)
                if line and line[:7].lower() != b"server:"
            )
        parts.append(server_line)
    for name, value in headers:
        parts.append(name + b": " + value + CRLF)
    parts.append(CRLF)
    return b"".join(parts)
