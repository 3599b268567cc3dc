"""The ASGI ``http.response.*`` rules of an HTTP/2 stream: the response HEADERS field list
(RFC 9113 section 8.2), the server's own fields, and trailer fields."""

from __future__ import annotations

from typing import Any, Final

from server.sansio.h2_head import CONNECTION_FIELDS, NAME_CHARS
from server.sansio.response import ASGIProtocolError

# Checked response fields by the app's exact (name, value) pair: the field to send and what it
# is.  Apps answer with the same constant header tuples over and over (as for HTTP/1.1's
# field-line cache in response.py); the table is emptied when full so varying values cannot
# grow it without bound.
_PLAIN, _LENGTH, _DATE, _SERVER, _DROP = 0, 1, 2, 3, 4
_CHECKED: dict[tuple[bytes, bytes], tuple[tuple[bytes, bytes], int]] = {}
_CHECKED_MAX: Final = 512


def _check_field(name: Any, value: Any) -> tuple[tuple[bytes, bytes], int]:
    if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
        raise ASGIProtocolError("http.response.start: header names and values must be bytes")
    lname = bytes(name).lower()
    value = bytes(value)
    if not lname or lname.translate(None, NAME_CHARS):
        raise ASGIProtocolError(f"http.response.start: invalid header {bytes(name)!r}")
    if 13 in value or 10 in value or 0 in value:
        raise ASGIProtocolError(f"http.response.start: invalid header {bytes(name)!r}")
    if lname in CONNECTION_FIELDS:
        # RFC 9113 section 8.2.2: MUST NOT be sent; HTTP/2 frames the body itself.
        return (lname, value), _DROP
    if lname == b"content-length":
        if not value.isdigit():
            raise ASGIProtocolError(f"http.response.start: invalid content-length {value!r}")
        return (lname, value), _LENGTH
    if lname == b"date":
        return (lname, value), _DATE
    if lname == b"server":
        return (lname, value), _SERVER
    return (lname, value), _PLAIN


def response_headers(
    status: int, raw: Any, default: list[tuple[bytes, bytes]]
) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """The header list of a response HEADERS frame, and the app's content-length if any."""
    headers = [(b":status", b"%d" % status)]
    has_date = has_server = False
    content_length: int | None = None
    checked = _CHECKED
    for pair in raw or ():
        try:
            known = checked.get(pair)
        except TypeError:  # unhashable: a [name, value] list
            known = None
        if known is None:
            try:
                name, value = pair
            except (TypeError, ValueError):
                raise ASGIProtocolError(
                    "http.response.start: headers must be [name, value] pairs"
                ) from None
            known = _check_field(name, value)
            if type(pair) is tuple and type(name) is bytes and type(value) is bytes:
                if len(checked) >= _CHECKED_MAX:
                    checked.clear()
                checked[pair] = known
        field, kind = known
        if kind == _PLAIN:
            headers.append(field)
        elif kind == _LENGTH:
            content_length = int(field[1])
            headers.append(field)
        elif kind == _DATE:
            has_date = True
            headers.append(field)
        elif kind == _SERVER:
            has_server = True
            headers.append(field)
    for name, value in default:
        if (name == b"date" and has_date) or (name == b"server" and has_server):
            continue
        headers.append((name, value))
    return headers, content_length


def field_pairs(lines: bytes) -> list[tuple[bytes, bytes]]:
    """``b"name: value\r\n..."`` header lines (the server's own: Server, ``--header``) as
    HTTP/2 fields: lower-case names, connection-specific ones left out (RFC 9113 section
    8.2.2)."""
    out: list[tuple[bytes, bytes]] = []
    for line in lines.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        name = name.strip().lower()
        if sep and name and name not in CONNECTION_FIELDS:
            out.append((name, value.strip()))
    return out


def trailer_fields(raw: Any) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for pair in raw or ():
        name, value = pair
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise ASGIProtocolError("http.response.trailers: field names and values must be bytes")
        lname = bytes(name).lower()
        if not lname or lname.translate(None, NAME_CHARS) or lname in CONNECTION_FIELDS:
            raise ASGIProtocolError(f"http.response.trailers: invalid field {bytes(name)!r}")
        value = bytes(value)
        out.append((lname, value))
    return out
