"""The response side of HTTP/1.x, Sans-I/O: ASGI ``http.response.*`` rules and serialisation.

``ResponseState`` checks the application's messages (order, types, header validity) and turns
them into the bytes of one transport write each.  Message order is one state machine:
:class:`ResponsePhase`, with every allowed step listed once in :data:`TRANSITIONS`.  Every
protocol that answers with an HTTP/1.x response uses it: the HTTP/1.1 protocol, the server's
own error responses and the WebSocket denial response.  No asyncio, no clock: the protocol
passes the Date/Server lines in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final

from server.writer import CRLF, LAST_CHUNK, chunk_header, status_line


class ASGIProtocolError(RuntimeError):
    """The application broke the ASGI HTTP message rules (wrong order, bad types...)."""


class ResponsePhase(enum.Enum):
    """Where one response is (the value says it in words, for errors).  A phase changes only
    along a transition of :data:`TRANSITIONS`."""

    NOT_STARTED = "http.response.start has not been sent"
    # The head goes out with the first body message, so that each ASGI send is one write.
    STARTED = "http.response.start was sent and no body yet"
    STREAMING = "the body is being sent (more_body=True)"
    TRAILERS_DUE = "the body is finished and trailers are expected"
    TRAILERS = "trailers are being sent (more_trailers=True)"
    COMPLETE = "the response is complete"
    # The first body was refused (longer than its Content-Length) after the head had been
    # built but before anything reached the transport: the protocol may still answer 500.
    WITHDRAWN = "the response was refused (a body longer than its Content-Length)"


class ResponseEvent(enum.IntEnum):
    """What the application asked for, as the phase machine sees it (ints: list indexes)."""

    START = 0  # http.response.start
    BODY = 1  # http.response.body or zerocopysend with more_body=True
    LAST_BODY = 2  # ... with more_body=False, no trailers declared
    LAST_BODY_BEFORE_TRAILERS = 3  # ... with more_body=False, trailers=True in start
    TRAILER_FIELDS = 4  # http.response.trailers with more_trailers=True
    LAST_TRAILERS = 5  # http.response.trailers with more_trailers=False
    FILE = 6  # http.response.pathsend: head and the whole body at once
    WITHDRAW_HEAD = 7  # the first body was refused: the head built for it is never written


_P, _E = ResponsePhase, ResponseEvent

# Every allowed transition; anything else is an ASGIProtocolError naming the message and the
# phase.  ASGI HTTP message order: start, body* (more_body), then trailers* if declared.
TRANSITIONS: Final[Mapping[tuple[ResponsePhase, ResponseEvent], ResponsePhase]] = {
    (_P.NOT_STARTED, _E.START): _P.STARTED,
    (_P.STARTED, _E.BODY): _P.STREAMING,
    (_P.STARTED, _E.LAST_BODY): _P.COMPLETE,
    (_P.STARTED, _E.LAST_BODY_BEFORE_TRAILERS): _P.TRAILERS_DUE,
    (_P.STARTED, _E.FILE): _P.COMPLETE,
    (_P.STARTED, _E.WITHDRAW_HEAD): _P.WITHDRAWN,
    (_P.STREAMING, _E.BODY): _P.STREAMING,
    (_P.STREAMING, _E.LAST_BODY): _P.COMPLETE,
    (_P.STREAMING, _E.LAST_BODY_BEFORE_TRAILERS): _P.TRAILERS_DUE,
    (_P.TRAILERS_DUE, _E.TRAILER_FIELDS): _P.TRAILERS,
    (_P.TRAILERS_DUE, _E.LAST_TRAILERS): _P.COMPLETE,
    (_P.TRAILERS, _E.TRAILER_FIELDS): _P.TRAILERS,
    (_P.TRAILERS, _E.LAST_TRAILERS): _P.COMPLETE,
}

# TRANSITIONS laid out for the hot path, derived once.  For each phase, its "moves": a list
# indexed by event of the row to assign, or None where the event is not allowed.  A row is
# (target phase, the target's moves, head_sent, complete): ``ResponseState`` keeps its
# phase's moves in a slot, so checking a message is one subscript by a plain int (no hashing of
# enum members, which a plain Enum does in Python), and taking the transition is one unpacking
# assignment that also sets the flags the protocols read as plain attributes.
_Moves = list["_Row | None"]
_Row = tuple[ResponsePhase, _Moves, bool, bool]


def _derive_moves() -> dict[ResponsePhase, _Moves]:
    moves: dict[ResponsePhase, _Moves] = {phase: [None] * len(_E) for phase in _P}
    for (phase, event), target in TRANSITIONS.items():
        head_sent = target in (_P.STREAMING, _P.TRAILERS_DUE, _P.TRAILERS, _P.COMPLETE)
        moves[phase][event] = (target, moves[target], head_sent, target is _P.COMPLETE)
    return moves


_MOVES: Final = _derive_moves()

# Bound to module names for the hot path: on Python 3.11 the enum metaclass defines
# ``__getattr__``, so ``ResponsePhase.X`` takes the slow attribute path every time, while a
# module global is a specialised load (benchmarks/micro/RESULTS.md, "Response phases as an
# enum").  The events are bound as exact ints, which list subscripts take on their fast path.
_NOT_STARTED: Final = _P.NOT_STARTED
_NOT_STARTED_MOVES: Final = _MOVES[_P.NOT_STARTED]
_TRAILERS_DUE: Final = _P.TRAILERS_DUE
_START: Final = _E.START.value
_BODY: Final = _E.BODY.value
_LAST_BODY: Final = _E.LAST_BODY.value
_LAST_BODY_BEFORE_TRAILERS: Final = _E.LAST_BODY_BEFORE_TRAILERS.value
_TRAILER_FIELDS: Final = _E.TRAILER_FIELDS.value
_LAST_TRAILERS: Final = _E.LAST_TRAILERS.value
_FILE: Final = _E.FILE.value
_WITHDRAW_HEAD: Final = _E.WITHDRAW_HEAD.value


class BodyFraming(enum.Enum):
    """How the end of the body is shown (RFC 9112 section 6.3), decided once with the head."""

    NONE = "no body"  # HEAD, 204, 304
    LENGTH = "content-length"
    CHUNKED = "chunked"
    CLOSE = "close-delimited"  # HTTP/1.0 without a length: the body ends with the connection


_NONE: Final = BodyFraming.NONE
_LENGTH: Final = BodyFraming.LENGTH
_CHUNKED: Final = BodyFraming.CHUNKED
_CLOSE: Final = BodyFraming.CLOSE

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

    Every method returns the list of parts for ONE transport write (possibly empty).  Progress
    is ``phase`` (:class:`ResponsePhase`).  ``head_sent`` and ``complete``, which the protocols
    read on every request, are plain attributes assigned together with the phase from the
    transition's row (a property would cost a call per read); ``started`` is a property.  A
    message first looks its transition up (:meth:`_next`), then does its work, then assigns
    the row: a message refused half-way leaves the response as it was.
    """

    __slots__ = (
        "_extra",
        "_framing",
        "_head_parts",
        "_moves",
        "_remaining",
        "complete",
        "content_length",
        "head_request",
        "head_sent",
        "http11",
        "keep_alive",
        "phase",
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
        self.phase = _NOT_STARTED
        self._moves = _NOT_STARTED_MOVES
        self.head_sent = False
        self.complete = False
        self.status = 0
        self.trailers = False
        self.content_length: int | None = None
        self._head_parts: list[bytes] = []
        self._extra = b""
        self._framing = _NONE
        self._remaining = 0

    @property
    def started(self) -> bool:
        """``http.response.start`` was accepted."""
        return self.phase is not _NOT_STARTED

    def _next(self, event: int, message: str) -> _Row:
        """The row of the transition ``event`` takes from the current phase; raises
        :class:`ASGIProtocolError` if :data:`TRANSITIONS` has none.  Changes nothing: the
        caller assigns the row once the message is done."""
        row = self._moves[event]
        if row is None:
            raise self._refused(message)
        return row

    def _refused(self, message: str) -> ASGIProtocolError:
        phase = self.phase
        return ASGIProtocolError(
            f"{message} not allowed: {phase.value} (response phase {phase.name})"
        )

    def _withdraw_head(self) -> None:
        """The first body was refused after its head was built: nothing was handed to the
        transport, so the protocol can still answer 500 (``head_sent`` stays False); every
        later message is refused, as the head built for this response is gone."""
        self.phase, self._moves, self.head_sent, self.complete = self._next(
            _WITHDRAW_HEAD, "withdrawing the head"
        )

    def start(self, message: Any, default_headers: bytes = b"") -> None:
        """Record ``http.response.start``; nothing is written until the first body message
        (ASGI: headers go out with the first body, which lets us coalesce them)."""
        row = self._moves[_START]  # _next, inlined: this runs for every response
        if row is None:
            raise self._refused("http.response.start")
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 999:
            raise ASGIProtocolError(f"http.response.start: invalid status {status!r}")
        close = False
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
                    close = True
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
        self.status = status
        self.trailers = bool(message.get("trailers", False))
        if close:
            self.keep_alive = False
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
        self.phase, self._moves, self.head_sent, self.complete = row

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
        head = b"".join(parts)
        self._head_parts = []
        return head

    def body(self, body: bytes | bytearray | memoryview, more_body: bool) -> list[Any]:
        """``http.response.body``: the parts to write for it."""
        event = _BODY if more_body else _LAST_BODY_BEFORE_TRAILERS if self.trailers else _LAST_BODY
        row = self._moves[event]  # _next, inlined: this runs for every response
        if row is None:
            raise self._refused("http.response.body")
        if type(body) is not bytes and not isinstance(body, bytearray | memoryview):
            raise ASGIProtocolError(f"http.response.body: body must be bytes, not {type(body)}")
        size = len(body)
        out: list[Any] = []
        if not self.head_sent:  # phase STARTED: the head goes out with this body
            out.append(self._head(size, more_body))
        framing = self._framing
        if framing is _LENGTH:
            if size > self._remaining:
                if out:
                    self._withdraw_head()  # the head built above is never written
                raise ASGIProtocolError("response body longer than its Content-Length")
            self._remaining -= size
            if size:
                out.append(body)
            if not more_body and self._remaining:
                # The client waits for bytes that will never come; only closing tells it.
                self.keep_alive = False
        elif framing is _CHUNKED:
            if size:
                out.append(chunk_header(size))
                out.append(body)
                out.append(CRLF)
            if not more_body and not self.trailers:
                out.append(LAST_CHUNK)
        elif framing is _CLOSE and size:
            out.append(body)
        self.phase, self._moves, self.head_sent, self.complete = row
        return out

    def send_trailers(self, headers: Iterable[Any], more_trailers: bool) -> list[bytes]:
        """``http.response.trailers`` (extension): trailer fields after the last chunk."""
        if not self.trailers:
            raise ASGIProtocolError("http.response.trailers without trailers=True in start")
        row = self._next(
            _TRAILER_FIELDS if more_trailers else _LAST_TRAILERS, "http.response.trailers"
        )
        out: list[bytes] = []
        if self._framing is _CHUNKED:
            # RFC 9112 section 7.1.2: last-chunk, then trailer fields, then CRLF.
            if self.phase is _TRAILERS_DUE:
                out.append(b"0\r\n")
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
        self.phase, self._moves, self.head_sent, self.complete = row
        return [b"".join(out)] if out else []

    def file_head(self, size: int) -> tuple[bytes, int]:
        """``http.response.pathsend``: the head, and how many file bytes to send after it."""
        row = self._next(_FILE, "http.response.pathsend")
        self.trailers = False
        if self.content_length is None:
            self.content_length = size
        head = self._head(size, False)
        self.phase, self._moves, self.head_sent, self.complete = row
        if self._framing is _NONE:
            return head, 0
        count = min(size, self._remaining)
        if count != self._remaining:
            self.keep_alive = False
        if self._framing is _CHUNKED:  # pragma: no cover - content_length is always set
            raise ASGIProtocolError("pathsend cannot be chunked")
        return head, count

    def file_body(self, size: int, more_body: bool) -> tuple[list[bytes], int, list[bytes]]:
        """``http.response.zerocopysend``: like ``body`` for ``size`` bytes that the caller
        copies from a file itself.  Returns (parts before, bytes to copy, parts after)."""
        event = _BODY if more_body else _LAST_BODY_BEFORE_TRAILERS if self.trailers else _LAST_BODY
        row = self._next(event, "http.response.zerocopysend")
        before: list[bytes] = []
        after: list[bytes] = []
        if not self.head_sent:  # phase STARTED: the head goes out with this body
            before.append(self._head(size, more_body))
        framing = self._framing
        count = 0
        if framing is _LENGTH:
            if size > self._remaining:
                if before:
                    self._withdraw_head()  # nothing written yet, as in body()
                raise ASGIProtocolError("response body longer than its Content-Length")
            self._remaining -= size
            count = size
            if not more_body and self._remaining:
                self.keep_alive = False
        elif framing is _CHUNKED:
            if size:
                before.append(chunk_header(size))
                after.append(CRLF)
                count = size
            if not more_body and not self.trailers:
                after.append(LAST_CHUNK)
        elif framing is _CLOSE:
            count = size
        self.phase, self._moves, self.head_sent, self.complete = row
        return before, count, after
