"""HTTP/1.1 server connection state, Sans-I/O: bytes in, events and bytes out.

Requests are parsed by h11; responses are serialized by us (``server.writer``) under the ASGI
HTTP message rules enforced by ``ResponseState``.  There is no asyncio and no clock here, so the
whole module can be driven byte by byte from tests.

Design notes
------------
* One fresh ``h11.Connection`` per request cycle.  h11 only ever sees the client side; at the end
  of a cycle we carry its unparsed bytes (pipelined requests) over into a new connection.  This
  is cheaper than telling h11 about our response (measured: ~14 us per cycle versus ~23 us for
  ``send(Response)`` + ``send(EndOfMessage)`` + ``start_next_cycle``) and it lets us honour
  HTTP/1.0 ``Connection: keep-alive``, which h11 itself refuses.
* After the request's ``EndOfMessage`` we never call h11's ``next_event`` again in that cycle:
  pipelined bytes just wait in h11's buffer (``buffered``) until ``start_next_cycle``.  For a
  request without body framing (no Content-Length/Transfer-Encoding, no Upgrade/Expect, not
  CONNECT) we do not even ask h11 for that ``EndOfMessage``: it is implied.
* Repeated heads: a cycle's bytes are held by us (``_raw``) until we know whether they start
  with the exact bytes of the last plain head h11 parsed on this connection; if so, that
  head's checked result is reused (``_try_repeat``), otherwise everything goes to h11.
* Limits (request line, header count/size, body size) are enforced here and surface as
  ``RequestError(status)``; the protocol answers with that status and closes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final, cast

import h11

from server.writer import CRLF, LAST_CHUNK, chunk_header, status_line

NEED_DATA: Final = h11.NEED_DATA
PAUSED: Final = h11.PAUSED
Data = h11.Data
EndOfMessage = h11.EndOfMessage
ConnectionClosed = h11.ConnectionClosed


class RequestError(Exception):
    """The client sent something we refuse; answer ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ASGIProtocolError(RuntimeError):
    """The application broke the ASGI HTTP message rules (wrong order, bad types...)."""


class RequestHead:
    """The parsed request head plus the facts the server needs from its headers (one pass)."""

    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "has_body",
        "headers",
        "host",
        "http_version",
        "keep_alive",
        "method",
        "target",
        "te_trailers",
        "upgrade",
        "websocket",
    )

    def __init__(self, request: h11.Request) -> None:
        self.method: bytes = request.method
        self.target: bytes = request.target
        self.http_version: bytes = request.http_version
        http11 = self.http_version == b"1.1"
        headers: list[tuple[bytes, bytes]] = []
        append = headers.append
        connection: list[bytes] = []
        content_length: int | None = None
        chunked = False
        expect = False
        upgrade: bytes | None = None
        te_trailers = False
        host: bytes | None = None
        # h11 keeps (raw name, lowercased name, value); reading its list directly avoids
        # rebuilding a tuple per header through Headers.__getitem__ (stable since h11 0.10).
        for _raw, name, value in request.headers._full_items:
            if b"_" in name:
                # CVE-2015-0219: Django (like CGI/WSGI) maps both "X-Auth-User" and
                # "X_Auth_User" to HTTP_X_AUTH_USER, so a client could spoof a header a
                # front proxy sets (the proxy strips only the dashed one).  Daphne and
                # Django's runserver drop such fields; so do we (no framing header has one).
                continue
            append((name, value))
            if name in _INTERESTING:
                if name == b"content-length":
                    content_length = int(value)  # h11 validated: digits only, one value
                elif name == b"transfer-encoding":
                    chunked = True  # h11 rejects anything but "chunked" (501)
                elif name == b"connection":
                    connection.extend(_tokens(value))
                elif name == b"expect":
                    expect = value.lower() == b"100-continue"
                elif name == b"upgrade":
                    upgrade = value.lower()
                elif name == b"te":
                    te_trailers = te_trailers or b"trailers" in _tokens(value)
                elif name == b"host":
                    host = value  # h11 already refused a second Host field
        self.headers = headers
        self.host = host
        self.content_length = content_length
        self.chunked = chunked
        self.has_body = chunked or bool(content_length)
        if http11:
            self.keep_alive = b"close" not in connection
        else:
            # HTTP/1.0 closes after each response unless the client asks (RFC 9112 section 9.3).
            self.keep_alive = b"keep-alive" in connection and b"close" not in connection
        # RFC 9110 section 10.1.1: a server MUST ignore 100-continue from an HTTP/1.0 client.
        self.expect_continue = expect and http11 and self.has_body
        # Only an upgrade the client also announced in Connection counts (RFC 9110 7.8).
        self.upgrade = upgrade if b"upgrade" in connection else None
        # RFC 6455 section 4.2.1: the opening handshake is an HTTP/1.1 (or later) GET whose
        # Upgrade field lists the "websocket" token (a token, not a substring).
        self.websocket = (
            self.upgrade is not None
            and http11
            and self.method == b"GET"
            and b"websocket" in _tokens(self.upgrade)
        )
        self.te_trailers = te_trailers and http11

    def copy(self) -> RequestHead:
        """An equal head with its own header list (the list becomes ``scope["headers"]``,
        which the application may change)."""
        new = _new_head(RequestHead)
        new.method = self.method
        new.target = self.target
        new.http_version = self.http_version
        new.headers = self.headers.copy()
        new.host = self.host
        new.content_length = self.content_length
        new.chunked = self.chunked
        new.has_body = self.has_body
        new.keep_alive = self.keep_alive
        new.expect_continue = self.expect_continue
        new.upgrade = self.upgrade
        new.websocket = self.websocket
        new.te_trailers = self.te_trailers
        return new


_new_head = object.__new__


# Heads with one of these fields are never served from the repeated-head cache (see
# HTTP11Connection._try_repeat): they change what h11 does after the head.
# (A Content-Length of 0 would be fine, but is rare on bodiless requests: kept simple.)
_NOT_REPEATABLE = frozenset((b"content-length", b"transfer-encoding", b"upgrade", b"expect"))
_END_OF_MESSAGE: Final = h11.EndOfMessage()
_CR_LF: Final = (13, 10)

_INTERESTING = frozenset(
    (
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"expect",
        b"upgrade",
        b"te",
        b"host",
    )
)

# Host = uri-host [ ":" port ] (RFC 9110 section 7.2, RFC 3986 section 3.2.2): an IP-literal in
# brackets (with an RFC 6874 zone id) or a reg-name (unreserved / pct-encoded / sub-delims; an
# IPv4 address is one too).
_HOST_RE: Final = re.compile(rb"(?:\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")

_ABSOLUTE_RE: Final = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]+)")


def _use_authority(head: RequestHead, authority: bytes) -> None:
    """RFC 9112 section 3.2.2: with an absolute-form target the server MUST ignore the Host
    field and use the target's authority instead; the app sees it as its Host header."""
    host = authority.rpartition(b"@")[2]  # userinfo is not part of the host
    headers = head.headers
    for i, (name, _value) in enumerate(headers):
        if name == b"host":
            headers[i] = (b"host", host)
            break
    else:
        headers.append((b"host", host))
    head.host = host


def _other_target_form(method: bytes, target: bytes) -> bool:
    """The request-target forms besides origin-form (RFC 9112 section 3.2): absolute-form,
    authority-form (CONNECT only) and asterisk-form (OPTIONS only)."""
    if target == b"*":
        return method == b"OPTIONS"
    if method == b"CONNECT":
        return True
    return _ABSOLUTE_RE.match(target) is not None


# RFC 9112 section 7.1: a recipient MUST anticipate large chunk sizes and prevent integer
# overflow.  h11 accepts up to 20 hex digits; a size beyond what a signed 64-bit integer holds
# is read differently by other parsers on the path (wrap-around), a smuggling vector, so it is
# refused outright.
MAX_CHUNK_SIZE: Final = 2**63 - 1


def _tokens(value: bytes) -> list[bytes]:
    return [t.strip() for t in value.lower().split(b",")]


Event = (
    RequestHead
    | h11.Data
    | h11.EndOfMessage
    | h11.ConnectionClosed
    | type[h11.NEED_DATA]
    | type[h11.PAUSED]
)


class HTTP11Connection:
    """The request side of one HTTP/1.1 connection (see the module docstring)."""

    __slots__ = (
        "_conn",
        "_direct",
        "_eom_due",
        "_fed",
        "_handover",
        "_in_head",
        "_line_len",
        "_max_head",
        "_raw",
        "_repeat_head",
        "_repeat_template",
        "body_complete",
        "body_received",
        "head",
        "limit_body",
        "limit_header_size",
        "limit_headers",
        "limit_line",
    )

    def __init__(
        self,
        *,
        limit_request_line: int = 8190,
        limit_request_headers: int = 100,
        limit_request_header_size: int = 65536,
        limit_request_body: int | None = None,
    ) -> None:
        self.limit_line = limit_request_line
        self.limit_headers = limit_request_headers
        self.limit_header_size = limit_request_header_size
        self.limit_body = limit_request_body
        # h11 refuses to buffer an incomplete head beyond this (-> 431 / 414 below).
        self._max_head = limit_request_line + limit_request_header_size + 4
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head)
        # The repeated-head cache (see ``_try_repeat``): the exact bytes of the last bodiless
        # request head h11 parsed on this connection, and the head we made of it (checked).
        self._repeat_head = b""
        self._repeat_template: RequestHead | None = None
        # This cycle's input while h11 has not been given any of it (see ``_try_repeat``).
        self._raw = bytearray()
        self._handover: bytes | None = None
        self._reset(0)

    def _reset(self, carried: int) -> None:
        self._fed = carried  # bytes received since this cycle's request head began
        self._in_head = True
        self._line_len = -1
        self._direct = True  # input is held in _raw, h11's connection is fresh and empty
        self._eom_due = False
        self._handover = None
        self.head: RequestHead | None = None
        self.body_complete = False
        self.body_received = 0

    # --- input ---------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if not self._fed and data[:1] in (b"\r", b"\n"):
            # RFC 9112 section 2.2: ignore empty lines before a request-line (some clients
            # send a CRLF after a POST body).  h11 itself would reject them.
            data = data.lstrip(b"\r\n")
            if not data:
                return
        self._fed += len(data)
        if self._direct:
            self._raw += data
        else:
            self._handover = None  # the head (if still to come) spans several reads
            self._conn.receive_data(data)

    def receive_eof(self) -> None:
        if self._direct:
            self._hand_over()
        if self._conn.their_state is not h11.ERROR:
            self._conn.receive_data(b"")

    def _hand_over(self) -> None:
        """Give the input held in ``_raw`` to h11; from now on h11 reads this cycle."""
        self._direct = False
        raw = self._raw
        if raw:
            data = bytes(raw)
            raw.clear()
            self._handover = data
            self._conn.receive_data(data)

    @property
    def buffered(self) -> int:
        """Bytes received that were not turned into events yet (pipelined requests)."""
        if self._direct:
            return len(self._raw)
        return len(self._conn._receive_buffer)

    @property
    def awaiting_head(self) -> bool:
        return self._in_head

    def next_event(self) -> Event:
        """The next event: ``RequestHead``, ``Data``, ``EndOfMessage``, ``ConnectionClosed``,
        ``NEED_DATA`` or ``PAUSED`` (request finished; more bytes wait for the next cycle).

        Raises ``RequestError`` for anything the client got wrong.
        """
        if self.body_complete:
            return PAUSED
        if self._eom_due:
            self._eom_due = False
            self.body_complete = True
            return _END_OF_MESSAGE
        if self._direct:
            if not self._raw:
                return NEED_DATA
            head = self._try_repeat()
            if head is not None:
                return head
            self._hand_over()
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise self._error(exc) from None
        if isinstance(event, h11.Data):
            self.body_received += len(event.data)
            if self.limit_body is not None and self.body_received > self.limit_body:
                raise RequestError(413, "request body larger than --limit-request-body")
            if event.chunk_start and self.head is not None and self.head.chunked:
                self._check_chunk_size(len(event.data))
        elif isinstance(event, h11.EndOfMessage):
            self.body_complete = True
        elif isinstance(event, h11.Request):
            head = self._request(event)
            if self._plain(event, head):
                # No body by its framing (RFC 9112 section 6.3: neither Content-Length nor
                # Transfer-Encoding), so h11's next event is EndOfMessage: we skip asking
                # for it: one h11 next_event less per request (http_cycle.py, distinct heads:
                # 37.3 -> 33.1 us).
                self._eom_due = True
                self._remember(head)
            self._handover = None
            return head
        elif event is NEED_DATA:
            if self._in_head:
                self._check_head()
            elif self.head is not None and self.head.chunked:
                self._check_chunk_size(0)
        elif event is PAUSED:
            # h11 pauses after a protocol-switch proposal; for us the message is complete.
            self.body_complete = True
        # A server-side h11 connection only yields the client's events (or the sentinels).
        return cast(Event, event)

    # --- the repeated-head cache ------------------------------------------------------
    # Keep-alive clients (browsers polling an endpoint, API clients, load generators) send
    # the very same request head again and again.  h11 turning a typical 80-byte GET head
    # into a Request costs ~11 us standalone and ~15 us inside the protocol; comparing bytes
    # costs ~0.1 us.  Measured with benchmarks/micro/http_cycle.py (keep-alive GETs through
    # HttpProtocol): 36.2 -> 7.2 us per request; wrk -c50 hello world ~25k -> ~50k req/s on
    # one core (benchmarks/micro/RESULTS.md).  Parsing is a pure function of
    # the bytes (a fresh h11 connection per cycle, nothing carried over), so when this cycle's
    # input starts with the exact bytes of a head h11 already parsed, h11 would stop at the
    # same blank line (the first one in those bytes) and return an equal Request, which our
    # checks (``_request``, pure functions of the head) would accept again: we reuse a copy of
    # the head they produced.  Only heads without a body, an
    # Upgrade, an Expect or CONNECT are remembered: for those h11's next events are just
    # EndOfMessage and then waiting for the next cycle, so nothing else needs h11's state.
    # Bytes that only start like the known head go to h11 unchanged, as does a head that
    # arrived over several reads (it is not remembered: its exact bytes are not at hand).

    def _try_repeat(self) -> RequestHead | None:
        known = self._repeat_head
        if not known or not self._raw.startswith(known):
            return None
        template = self._repeat_template
        assert template is not None
        del self._raw[: len(known)]
        # The template passed every check in _request already, and they depend on nothing
        # but the head: a copy (~0.5 us) instead of RequestHead + _request again (~1.5 us).
        head = self.head = template.copy()
        self._in_head = False
        self._eom_due = True
        return head

    def _plain(self, request: h11.Request, head: RequestHead) -> bool:
        """A request whose head is all there is: no body, no Upgrade/Expect, not CONNECT."""
        if head.has_body or request.method == b"CONNECT":
            return False
        for _raw, name, _value in request.headers._full_items:
            if name in _NOT_REPEATABLE:
                return False
        return True

    def _remember(self, head: RequestHead) -> None:
        """Keep a plain head for ``_try_repeat`` if its exact bytes are known."""
        data = self._handover
        if data is None:
            return
        size = len(data) - len(self._conn._receive_buffer)
        if size <= 0:
            return
        self._repeat_head = data[:size]
        self._repeat_template = head.copy()

    def _check_chunk_size(self, consumed: int) -> None:
        # h11 keeps what is left of the chunk being read in its reader (stable since h11
        # 0.9); plus what this chunk's first Data event already took, that is its size.
        remaining = getattr(getattr(self._conn, "_reader", None), "_bytes_in_chunk", 0)
        if remaining + consumed > MAX_CHUNK_SIZE:
            raise RequestError(400, "chunk size too large")

    def _check_head(self) -> None:
        """Limits on a head that is still incomplete (h11 only caps the whole buffer).

        Runs only once more bytes arrived than the smaller limit allows; the request line's
        length is measured once (one copy of the pending bytes) and then remembered, so a
        client trickling a big head byte by byte costs O(1) per byte.
        """
        fed = self._fed
        line_len = self._line_len
        if line_len < 0:
            if fed <= self.limit_line + 2 and fed <= self.limit_header_size:
                return
            pending = self._conn.trailing_data[0]
            start = len(pending) - len(pending.lstrip(b"\r\n"))  # h11 skips leading CRLFs
            end = pending.find(b"\n", start)
            if end < 0:
                if fed - start > self.limit_line + 2:
                    raise RequestError(414, "request line longer than --limit-request-line")
                return
            if end - start > self.limit_line + 1:
                raise RequestError(414, "request line longer than --limit-request-line")
            line_len = self._line_len = end + 1
        if fed - line_len > self.limit_header_size + 2:
            raise RequestError(431, "header block larger than --limit-request-header-size")

    def _error(self, exc: h11.RemoteProtocolError) -> RequestError:
        status = exc.error_status_hint
        if status == 431 and self._in_head:
            pending = self._conn.trailing_data[0].lstrip(b"\r\n")
            if b"\n" not in pending[: self.limit_line + 2]:
                return RequestError(414, "request line longer than --limit-request-line")
            return RequestError(431, "request header block larger than allowed")
        if status == 431:
            status = 400
        return RequestError(status, str(exc) or "malformed request")

    def _request(self, request: h11.Request) -> RequestHead:
        self._in_head = False
        if request.http_version not in (b"1.1", b"1.0"):
            raise RequestError(505, "HTTP version not supported")
        if request.target[:1] != b"/" and not _other_target_form(request.method, request.target):
            raise RequestError(400, "invalid request-target")
        fed = self._fed
        # request-line = method SP request-target SP HTTP-version (RFC 9112 section 3); only
        # measured when enough bytes arrived for it to possibly be too long.
        if (
            fed > self.limit_line
            and len(request.method) + len(request.target) + 10 > self.limit_line
        ):
            raise RequestError(414, "request line longer than --limit-request-line")
        if len(request.headers) > self.limit_headers:
            raise RequestError(431, "more header fields than --limit-request-headers")
        if fed > self.limit_header_size:
            size = 0
            for _raw, name, value in request.headers._full_items:
                size += len(name) + len(value) + 4  # "name: value\r\n"
            if size > self.limit_header_size:
                raise RequestError(431, "header block larger than --limit-request-header-size")
        head = RequestHead(request)
        self.head = head  # known even when refused below (a HEAD error response has no body)
        if head.chunked:
            if head.content_length is not None:
                # RFC 9112 section 6.1: both framings at once smells of request smuggling;
                # the server may reject it and must close the connection either way.
                raise RequestError(400, "both Transfer-Encoding and Content-Length")
            if head.http_version != b"1.1":
                # RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message MUST be
                # treated as faulty framing; HTTP/1.0 has no chunked coding to trust.
                raise RequestError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if request.target[:1] != b"/" and request.method != b"CONNECT":
            absolute = _ABSOLUTE_RE.match(request.target)
            if absolute is not None:
                _use_authority(head, absolute.group(1))
        if head.host is not None and _HOST_RE.fullmatch(head.host) is None:
            # RFC 9112 section 3.2: 400 for a Host field with an invalid value (h11 already
            # answers a missing or repeated Host with 400).
            raise RequestError(400, "invalid Host header")
        if (
            self.limit_body is not None
            and head.content_length is not None
            and head.content_length > self.limit_body
        ):
            raise RequestError(413, "request body larger than --limit-request-body")
        return head

    def take_upgrade_data(self) -> bytes:
        """For a protocol switch: finish the (bodiless) request, return the bytes after it."""
        if self._direct:
            return bytes(self._raw)  # (never reached: upgrade heads are not remembered)
        if not self.body_complete:
            event = self.next_event()
            if type(event) is not h11.EndOfMessage and event is not PAUSED:
                raise RequestError(400, "upgrade request with a body")
        return self._conn.trailing_data[0]

    def start_next_cycle(self) -> None:
        """Begin parsing the next request, keeping the bytes that already arrived for it."""
        if self._direct:
            # h11 saw nothing of this cycle (a repeated head): its connection is still fresh
            # and the next request's bytes are already in _raw.
            raw = self._raw
            if raw and raw[0] in _CR_LF:
                raw[:] = raw.lstrip(b"\r\n")  # RFC 9112 section 2.2, as in receive_data
            self._reset(len(raw))
            return
        data, closed = self._conn.trailing_data
        if data[:1] in (b"\r", b"\n"):
            data = data.lstrip(b"\r\n")  # RFC 9112 section 2.2, as in receive_data
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head)
        self._reset(len(data))
        if closed:
            # After EOF there is nothing more to wait for: h11 reads the rest (and reports
            # ConnectionClosed or an incomplete request) as before.
            self._direct = False
            if data:
                self._conn.receive_data(data)
            self._conn.receive_data(b"")
        elif data:
            self._raw += data


# --- the response side --------------------------------------------------------------------

_NONE, _LENGTH, _CHUNKED, _CLOSE = 0, 1, 2, 3
_DROPPED = frozenset((b"content-length", b"transfer-encoding", b"connection"))


# tchar (RFC 9110 section 5.6.2): what a field name may consist of.
_TCHARS: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _bad_field(name: bytes, value: bytes) -> bool:
    # RFC 9110 section 5.1: a field name is a token (deleting every tchar must leave nothing);
    # section 5.5: CR, LF and NUL are never allowed in a value (response splitting).
    if not name or name.translate(None, _TCHARS):
        return True
    return b"\r" in value or b"\n" in value or b"\0" in value


# Validated response header lines, by (name, value) pair.  Applications answer with the same
# constant header tuples over and over (content-type, security headers); checking and joining
# one costs ~0.6 us, a dict hit ~0.1 us (benchmarks/micro/response.py, start + body: 2 headers
# 2.33 -> 1.04 us, 6 headers 4.99 -> 1.22 us).  Keys are exact bytes tuples, so a hit is the same
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
                elif lname == b"connection" and b"close" in value.lower():
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
