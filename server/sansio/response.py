"""The response side of HTTP/1.x, Sans-I/O: ASGI ``http.response.*`` rules and serialisation.

``ResponseState`` checks the application's messages (order, types, header validity) and turns
them into the bytes of one transport write each.  Every protocol that answers with an HTTP/1.x
response uses it: the HTTP/1.1 protocol, the server's own error responses and the WebSocket
denial response.  No asyncio, no clock: the protocol passes the Date/Server lines in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from server.writer import CRLF, LAST_CHUNK, chunk_header, status_line


class ASGIProtocolError(RuntimeError):
    """The application broke the ASGI HTTP message rules (wrong order, bad types...)."""


_NONE, _LENGTH, _CHUNKED, _CLOSE = 0, 1, 2, 3
_DROPPED = frozenset((b"content-length", b"transfer-encoding", b"connection"))


# tchar (RFC 9110 section 5.6.2): what a field name may consist of.
_TCHARS: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _bad_field(name: bytes, value: bytes) -> bool:
    # RFC 9110 section 5.1: a field name is a token (deleting every tchar must leave nothing);
    # section 5.5: CR, LF and NUL are never allowed in a value (response splitting).
    if not name or name.translate(None, _TCHARS):
        return True
    # (ints, not b"\r": a bytes needle first fails as an int, a raised and cleared TypeError)
    return 13 in value or 10 in value or 0 in value


# Validated response header lines, by (name, value) pair.  Applications answer with the same
# constant header tuples over and over (content-type, security headers); a dict hit costs a
# fraction of checking and joining a line again (benchmarks/micro/RESULTS.md, "Response header
# line cache"; benchmarks/micro/response.py).  Keys are exact bytes tuples, so a hit is the same
# input as before; the table is emptied when full so varying values cannot grow it unbounded.
_PLAIN, _LENGTH_FIELD, _DATE_FIELD, _SERVER_FIELD = 0, 1, 2, 3
_FIELD_LINES: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
_FIELD_LINES_MAX: Final = 512


def _remember_field(pair: tuple[bytes, bytes], line: bytes, kind: int) -> None:
    if len(_FIELD_LINES) >= _FIELD_LINES_MAX:
        _FIELD_LINES.clear()
    _FIELD_LINES[pair] = (line, kind)


class ResponseState:
    """ASGI ``http.response.*`` rules for one request, producing the bytes to write.

    Every method returns the list of parts for ONE transport write (possibly empty).
    """

    __slots__ = (
        "_extra",
        "_framing",
        "_head_parts",
        "_remaining",
        "_trailers_open",
        "complete",
        "content_length",
        "head_request",
        "head_sent",
        "http11",
        "keep_alive",
        "started",
        "status",
        "trailers",
        "trailers_allowed",
    )

    def __init__(
        self,
        *,
        head_request: bool = False,
        http11: bool = True,
        keep_alive: bool = True,
        trailers_allowed: bool = False,
    ) -> None:
        self.head_request = head_request
        self.http11 = http11
        self.keep_alive = keep_alive
        self.trailers_allowed = trailers_allowed
        self.started = False
        self.head_sent = False
        self.complete = False
        self.status = 0
        self.trailers = False
        self.content_length: int | None = None
        self._head_parts: list[bytes] = []
        self._extra = b""
        self._framing = _NONE
        self._remaining = 0
        self._trailers_open = 0

    def start(self, message: Any, default_headers: bytes = b"") -> None:
        """Record ``http.response.start``; nothing is written until the first body message
        (ASGI: headers go out with the first body, which lets us coalesce them)."""
        if self.started:
            raise ASGIProtocolError("http.response.start sent twice")
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 999:
            raise ASGIProtocolError(f"http.response.start: invalid status {status!r}")
        self.status = status
        self.trailers = bool(message.get("trailers", False))
        parts = [status_line(status)]
        has_date = has_server = False
        content_length: int | None = None
        lines = _FIELD_LINES
        for pair in message.get("headers", ()):
            try:
                known = lines.get(pair)
            except TypeError:  # unhashable: a [name, value] list or bytearray parts
                known = None
            if known is not None:
                line, kind = known
                if kind == _PLAIN:
                    parts.append(line)
                elif kind == _LENGTH_FIELD:
                    content_length = int(pair[1])  # validated when it was remembered
                elif kind == _DATE_FIELD:
                    has_date = True
                    parts.append(line)
                else:
                    has_server = True
                    parts.append(line)
                continue
            name, value = pair
            exact = type(name) is bytes and type(value) is bytes
            if not exact:
                if isinstance(name, bytes | bytearray) and isinstance(value, bytes | bytearray):
                    name, value = bytes(name), bytes(value)
                else:
                    raise ASGIProtocolError(
                        "http.response.start: header names and values must be bytes"
                    )
            if _bad_field(name, value):
                raise ASGIProtocolError(f"http.response.start: invalid header {name!r}")
            lname = name.lower()
            if lname in _DROPPED:
                if lname == b"content-length":
                    try:
                        content_length = int(value)
                    except ValueError:
                        raise ASGIProtocolError(
                            f"http.response.start: invalid content-length {value!r}"
                        ) from None
                    if content_length < 0:
                        raise ASGIProtocolError("http.response.start: negative content-length")
                    if exact and type(pair) is tuple:
                        _remember_field(pair, b"", _LENGTH_FIELD)
                elif lname == b"connection" and value.lower().find(b"close") >= 0:
                    self.keep_alive = False
                # framing headers are ours to decide (RFC 9112 section 6); dropped here
                continue
            kind = _PLAIN
            if lname == b"date":
                has_date = True
                kind = _DATE_FIELD
            elif lname == b"server":
                has_server = True
                kind = _SERVER_FIELD
            line = name + b": " + value + CRLF
            parts.append(line)
            if exact and type(pair) is tuple:
                _remember_field(pair, line, kind)
        self.content_length = content_length
        if default_headers and not (has_date or has_server):
            self._extra = default_headers
        elif default_headers:
            # The app's own Date/Server win; keep only the ones it did not set.
            kept = [
                line
                for line in default_headers.split(CRLF)
                if line
                and not (has_date and line[:5].lower() == b"date:")
                and not (has_server and line[:7].lower() == b"server:")
            ]
            self._extra = b"".join(line + CRLF for line in kept)
        self._head_parts = parts
        self.started = True

    def _head(self, body_length: int | None, more_body: bool) -> bytes:
        """Decide framing (RFC 9112 section 6) and serialize the head."""
        status = self.status
        parts = self._head_parts
        parts.append(self._extra)
        cl = self.content_length
        if status == 204 or status == 304 or self.head_request:
            # No body is ever sent.  HEAD and 304 keep the length the GET would have had
            # (RFC 9110 sections 9.3.2 and 15.4.5); 204 MUST NOT carry one (section 8.6).
            self._framing = _NONE
            if status != 204:
                if cl is not None:
                    parts.append(b"content-length: %d\r\n" % cl)
                elif self.head_request and body_length and not more_body:
                    parts.append(b"content-length: %d\r\n" % body_length)
        elif self.trailers and self.trailers_allowed:
            self._framing = _CHUNKED  # trailers need chunked coding (RFC 9112 section 7.1.2)
            parts.append(b"transfer-encoding: chunked\r\n")
        elif cl is not None:
            self._framing = _LENGTH
            self._remaining = cl
            parts.append(b"content-length: %d\r\n" % cl)
        elif body_length is not None and not more_body:
            self._framing = _LENGTH
            self._remaining = body_length
            parts.append(b"content-length: %d\r\n" % body_length)
        elif self.http11:
            self._framing = _CHUNKED
            parts.append(b"transfer-encoding: chunked\r\n")
        else:
            # HTTP/1.0 has no chunked coding: the end of the body is the end of the connection.
            self._framing = _CLOSE
            self.keep_alive = False
        if not self.keep_alive:
            parts.append(b"connection: close\r\n\r\n")
        elif not self.http11:
            parts.append(b"connection: keep-alive\r\n\r\n")
        else:
            parts.append(CRLF)
        self.head_sent = True
        head = b"".join(parts)
        self._head_parts = []
        return head

    def body(self, body: bytes | bytearray | memoryview, more_body: bool) -> list[Any]:
        """``http.response.body``: the parts to write for it."""
        if not self.started:
            raise ASGIProtocolError("http.response.body before http.response.start")
        if self.complete or self._trailers_open:
            raise ASGIProtocolError("http.response.body after the response finished")
        if type(body) is not bytes and not isinstance(body, bytearray | memoryview):
            raise ASGIProtocolError(f"http.response.body: body must be bytes, not {type(body)}")
        size = len(body)
        out: list[Any] = []
        if not self.head_sent:
            out.append(self._head(size, more_body))
        framing = self._framing
        if framing == _LENGTH:
            if size > self._remaining:
                if out:
                    # The head built above is not written: the protocol can still answer 500.
                    self.head_sent = False
                raise ASGIProtocolError("response body longer than its Content-Length")
            self._remaining -= size
            if size:
                out.append(body)
            if not more_body and self._remaining:
                # The client waits for bytes that will never come; only closing tells it.
                self.keep_alive = False
        elif framing == _CHUNKED:
            if size:
                out.append(chunk_header(size))
                out.append(body)
                out.append(CRLF)
            if not more_body and not self.trailers:
                out.append(LAST_CHUNK)
        elif framing == _CLOSE and size:
            out.append(body)
        if not more_body:
            if self.trailers:
                self._trailers_open = 1
            else:
                self.complete = True
        return out

    def send_trailers(self, headers: Iterable[Any], more_trailers: bool) -> list[bytes]:
        """``http.response.trailers`` (extension): trailer fields after the last chunk."""
        if not self.trailers:
            raise ASGIProtocolError("http.response.trailers without trailers=True in start")
        if not self._trailers_open:
            raise ASGIProtocolError("http.response.trailers before the last body message")
        out: list[bytes] = []
        if self._framing == _CHUNKED:
            # RFC 9112 section 7.1.2: last-chunk, then trailer fields, then CRLF.
            if self._trailers_open == 1:
                out.append(b"0\r\n")
                self._trailers_open = 2
            for name, value in headers:
                if not isinstance(name, bytes | bytearray) or not isinstance(
                    value, bytes | bytearray
                ):
                    raise ASGIProtocolError(
                        "http.response.trailers: field names and values must be bytes"
                    )
                name, value = bytes(name), bytes(value)
                if _bad_field(name, value):
                    raise ASGIProtocolError(f"http.response.trailers: invalid field {name!r}")
                out.append(name + b": " + value + CRLF)
            if not more_trailers:
                out.append(CRLF)
        if not more_trailers:
            self._trailers_open = 0
            self.complete = True
        return [b"".join(out)] if out else []

    def file_head(self, size: int) -> tuple[bytes, int]:
        """``http.response.pathsend``: the head, and how many file bytes to send after it."""
        if not self.started:
            raise ASGIProtocolError("http.response.pathsend before http.response.start")
        if self.head_sent or self.complete:
            raise ASGIProtocolError("http.response.pathsend after body was sent")
        self.trailers = False
        if self.content_length is None:
            self.content_length = size
        head = self._head(size, False)
        self.complete = True
        if self._framing == _NONE:
            return head, 0
        count = min(size, self._remaining)
        if count != self._remaining:
            self.keep_alive = False
        if self._framing == _CHUNKED:  # pragma: no cover - content_length is always set
            raise ASGIProtocolError("pathsend cannot be chunked")
        return head, count

    def file_body(self, size: int, more_body: bool) -> tuple[list[bytes], int, list[bytes]]:
        """``http.response.zerocopysend``: like ``body`` for ``size`` bytes that the caller
        copies from a file itself.  Returns (parts before, bytes to copy, parts after)."""
        if not self.started:
            raise ASGIProtocolError("http.response.zerocopysend before http.response.start")
        if self.complete or self._trailers_open:
            raise ASGIProtocolError("http.response.zerocopysend after the response finished")
        before: list[bytes] = []
        after: list[bytes] = []
        if not self.head_sent:
            before.append(self._head(size, more_body))
        framing = self._framing
        count = 0
        if framing == _LENGTH:
            if size > self._remaining:
                if before:
                    self.head_sent = False  # nothing written yet, as in body()
                raise ASGIProtocolError("response body longer than its Content-Length")
            self._remaining -= size
            count = size
            if not more_body and self._remaining:
                self.keep_alive = False
        elif framing == _CHUNKED:
            if size:
                before.append(chunk_header(size))
                after.append(CRLF)
                count = size
            if not more_body and not self.trailers:
                after.append(LAST_CHUNK)
        elif framing == _CLOSE:
            count = size
        if not more_body:
            if self.trailers:
                self._trailers_open = 1
            else:
                self.complete = True
        return before, count, after
