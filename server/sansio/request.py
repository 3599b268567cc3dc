"""The request head: a strict parser of our own, with h11 as its oracle and fallback.

``parse_head`` accepts a strict subset of RFC 9112 (field lines already validated are looked up
whole in a bounded table, the others checked one by one with a few C-speed bytes operations)
and returns ``None`` for anything outside it; ``HTTP11Connection`` then hands the very same
bytes to h11, which decides every edge case and its error status.  The subset:

* request-line ``method SP origin-form SP HTTP/1.0|1.1 CRLF`` (RFC 9112 section 3; the target is
  visible ASCII starting with ``/``);
* field lines ``token ":" OWS value OWS CRLF`` (RFC 9112 section 5) whose value is visible ASCII
  or obs-text with single spaces/tabs inside: no control character, no obs-fold, no bare CR/LF;
* exactly one Host field; at most one Content-Length, of 1 to 18 digits; no Transfer-Encoding
  (chunked bodies stay on the h11 path);
* within the configured limits (request-line length, field count, header-block size).

Every head in the subset is one h11 accepts and parses to the same method, target, version and
fields (h11's grammar is a superset of these patterns: tests/server/sansio/test_request.py checks
it differentially), so our checks after parsing (``check_head``) give the same answer on both
paths.  The stricter rules RFC 9112 allows and h11 does not apply (obs-fold, control characters
in values, CONNECT/authority-form) are enforced on the h11 path by ``check_h11_head``.
"""

from __future__ import annotations

import re
from itertools import repeat as _repeat
from typing import TYPE_CHECKING, Any, Final

from server.sansio.limits import Limits

if TYPE_CHECKING:
    import h11


class RequestError(Exception):
    """The client sent something we refuse; answer ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


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

    method: bytes
    target: bytes
    http_version: bytes
    headers: list[tuple[bytes, bytes]]
    host: bytes | None
    content_length: int | None
    chunked: bool
    has_body: bool
    keep_alive: bool
    expect_continue: bool
    upgrade: bytes | None
    websocket: bool
    te_trailers: bool

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """``headers``: lowercased names, in order (fields named with ``_`` already dropped)."""
        self.method = method
        self.target = target
        self.http_version = http_version
        _scan_fields(self, headers)

    def copy(self, headers: tuple[tuple[bytes, bytes], ...]) -> RequestHead:
        """An equal head listing ``headers`` in a list of its own (the list becomes
        ``scope["headers"]``, which the application may change)."""
        return self.like(self.target, list(headers))

    def like(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> RequestHead:
        """A head with this one's method, version and facts, and ``target`` and ``headers``."""
        new = _new_head(RequestHead)
        new.method = self.method
        new.target = target
        new.http_version = self.http_version
        new.headers = headers
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

_INTERESTING: Final = frozenset(
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


def _tokens(value: bytes) -> tuple[bytes, ...]:
    """The lowercased elements of a list-valued field (Connection, TE, Upgrade: RFC 9110
    section 5.6.1).  A client sends the same few values again and again ("keep-alive"), so
    short ones are remembered (bounded, emptied when full)."""
    tokens = _TOKENS.get(value)
    if tokens is None:
        tokens = tuple([t.strip() for t in value.lower().split(b",")])
        if len(value) <= 64:
            if len(_TOKENS) >= 256:
                _TOKENS.clear()
            _TOKENS[value] = tokens
    return tokens


_TOKENS: dict[bytes, tuple[bytes, ...]] = {}


def _scan_fields(head: RequestHead, headers: list[tuple[bytes, bytes]]) -> bool:
    """Fill ``head`` from its fields (both parsers use this one pass, so the facts cannot
    differ between them).  False when the fields are outside the strict subset: a second Host
    or Content-Length, a Content-Length that is not 1-18 digits, any Transfer-Encoding (h11
    has already refused or normalised those on its path)."""
    http11 = head.http_version == b"1.1"
    connection: list[bytes] = []
    content_length: int | None = None
    chunked = False
    expect = False
    upgrade: bytes | None = None
    te_trailers = False
    host: bytes | None = None
    strict = True
    for name, value in headers:
        if name in _INTERESTING:
            if name == b"host":
                if host is not None:
                    strict = False
                host = value
            elif name == b"connection":
                connection.extend(_tokens(value))
            elif name == b"content-length":
                if content_length is not None or not value.isdigit() or len(value) > 18:
                    strict = False
                    content_length = -1
                else:
                    content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = True  # h11 refuses anything but "chunked" (501)
                strict = False
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
            elif name == b"upgrade":
                upgrade = value.lower()
            else:  # te
                te_trailers = te_trailers or b"trailers" in _tokens(value)
    head.headers = headers
    head.host = host
    head.content_length = content_length
    head.chunked = chunked
    head.has_body = chunked or bool(content_length)
    if http11:
        head.keep_alive = b"close" not in connection
    else:
        # HTTP/1.0 closes after each response unless the client asks (RFC 9112 section 9.3).
        head.keep_alive = b"keep-alive" in connection and b"close" not in connection
    # RFC 9110 section 10.1.1: a server MUST ignore 100-continue from an HTTP/1.0 client.
    head.expect_continue = expect and http11 and head.has_body
    # Only an upgrade the client also announced in Connection counts (RFC 9110 7.8).
    head.upgrade = upgrade if b"upgrade" in connection else None
    # RFC 6455 section 4.2.1: the opening handshake is an HTTP/1.1 (or later) GET whose
    # Upgrade field lists the "websocket" token (a token, not a substring).
    head.websocket = (
        head.upgrade is not None
        and http11
        and head.method == b"GET"
        and b"websocket" in _tokens(head.upgrade)
    )
    head.te_trailers = te_trailers and http11
    return strict and host is not None


# --- the strict parser --------------------------------------------------------------------

# request-line (RFC 9112 section 3), origin-form only (section 3.2.1).
_REQUEST_LINE: Final = re.compile(
    rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+) (/[\x21-\x7e]*) HTTP/(1\.[01])\r\n"
)
# HTTP-version (RFC 9112 section 2.3) to the scope's http_version bytes.
_VERSIONS: Final = {b"HTTP/1.1": b"1.1", b"HTTP/1.0": b"1.0"}
# Methods known to be tokens (RFC 9110 section 9.1); any other goes through _REQUEST_LINE.
_METHODS: Final = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE")
)
# Visible ASCII (what an origin-form target consists of) to itself, every other byte to
# another one: str.translate gives back the very object when nothing changed.
_VCHAR_SAME: Final = bytes(c if 0x21 <= c <= 0x7E else (c + 1) % 256 for c in range(256))
# tchar (RFC 9110 section 5.6.2): what a field name consists of.
_NAME_BYTES: Final = (
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
# A field value holds VCHAR, obs-text, SP and HTAB (RFC 9110 section 5.5): deleting those
# leaves nothing of a valid one.
_FIELD_BYTES: Final = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# Host = uri-host [ ":" port ] (RFC 9110 section 7.2, RFC 3986 section 3.2.2): an IP-literal in
# brackets (with an RFC 6874 zone id) or a reg-name (unreserved / pct-encoded / sub-delims; an
# IPv4 address is one too).
_HOST_RE: Final = re.compile(rb"(?:\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")
# Host values already found valid: nearly every request of a server names the same few.
_GOOD_HOSTS: set[bytes] = set()
_GOOD_HOSTS_MAX: Final = 64


def parse_head(data: bytes, limits: Limits) -> RequestHead | None:
    """``data``: one whole head, request-line to the blank line (CRLF CRLF) included.

    The ``RequestHead`` for a head in the strict subset (see the module docstring), ``None``
    for any other (the caller hands it to h11).  The caller still runs ``check_head`` on it.

    Field lines are looked up whole in ``_LINES`` first: a client repeats most of its lines
    byte for byte on every request (User-Agent, Accept-*, the sec-ch-* hints), and whatever
    a line is worth is a pure function of its bytes, so a line validated once is not split and
    checked again.  A line not found is checked on its own (``_field_line``): a few bytes
    operations, each one C loop.  The lines whose names the server acts on (Host,
    Connection, ...) are kept apart (``_SPECIAL``) and fed to ``_scan_fields`` in order.
    """
    # request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 section 3), with
    # an origin-form target (section 3.2.1).  Split at its spaces rather than matched by
    # _REQUEST_LINE: about half the instructions for the usual methods.
    start = data.find(b"\r\n") + 2
    if start > limits.line:
        return None
    parts = data[: start - 2].split(b" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    http_version = _VERSIONS.get(version)
    if (
        http_version is None
        or target[:1] != b"/"
        or target.translate(_VCHAR_SAME) is not target
        or (method not in _METHODS and _REQUEST_LINE.match(data) is None)
    ):
        return None
    block = data[start:-4]  # the field lines, without the CRLF that ends the last one
    if len(block) > limits.size:
        return None
    # A bare CR or LF stays inside a line here and fails that line's check.
    lines = block.split(b"\r\n")
    count = len(lines)
    if count > limits.headers:
        return None
    # (name, value) per line; _MISS where the line is not in _LINES (filled in below).
    fields: list[Any] = list(map(_lines_get, lines, _repeat(_MISS)))
    specials: list[tuple[bytes, bytes]] = []
    misses = fields.count(_MISS)
    if misses:
        dropped = False
        i = -1
        for _ in range(misses):
            i = fields.index(_MISS, i + 1)
            raw = lines[i]
            field = _specials_get(raw)
            if field is None:
                field = _field_line(raw)
                if field is None:
                    return None
                name = field[0]
                if name in _INTERESTING:
                    if len(raw) <= _LINE_MAX:
                        if len(_SPECIAL) >= _SPECIAL_MAX:
                            _SPECIAL.clear()
                        _SPECIAL[raw] = field
                elif _UNDERSCORE in name:
                    # CVE-2015-0219: see head_from_h11; no framing field has a "_".
                    fields[i] = _DROPPED
                    dropped = True
                    continue
                else:
                    if len(raw) <= _LINE_MAX:
                        if len(_LINES) >= _LINES_MAX:
                            _LINES.clear()
                        _LINES[raw] = field
                    fields[i] = field
                    continue
            fields[i] = field
            specials.append(field)
        if dropped:
            fields = [field for field in fields if field is not _DROPPED]
    # What the special fields say depends on them, the method and the version only: a head
    # of a combination seen before takes its facts from the first head that had it.
    key = (method, http_version, *specials)
    model = _FACTS.get(key)
    if model is not None:
        return model.like(target, fields)
    head = _new_head(RequestHead)
    head.method = method
    head.target = target
    head.http_version = http_version
    if not _scan_fields(head, specials):
        return None
    head.headers = fields
    if len(_FACTS) >= _FACTS_MAX:
        _FACTS.clear()
    # A model of its own, without this request's target and header list (which could be
    # large): only its method, version and facts are read again.
    _FACTS[key] = head.like(b"", [])
    return head


# A head for each combination of method, version and special fields seen lately, by those:
# bounded, emptied when full.
_FACTS: dict[tuple[object, ...], RequestHead] = {}
_FACTS_MAX: Final = 256


def _field_line(raw: bytes) -> tuple[bytes, bytes] | None:
    """``(lowercased name, value)`` of one field line in the strict subset, else None.

    ``token ":" OWS value OWS`` (RFC 9112 section 5): a line starting with SP/HTAB (obs-fold)
    or with whitespace before its colon has a name that is not a token; the value may hold
    VCHAR, obs-text, SP and HTAB only (RFC 9110 section 5.5), so a bare CR or LF, NUL or any
    other control character sends the head to h11.
    """
    name, colon, rest = raw.partition(b":")
    if not colon or not name:
        return None
    name = name.translate(_NAME_LOWER)  # a byte outside tchar becomes NUL
    if 0 in name:
        return None
    value = rest.strip(b" \t")
    # Unchanged (the very object back) when every byte maps to itself, i.e. is valid.
    if value.translate(_VALUE_SAME) is not value:
        return None
    return name, value


# Field lines already found valid (see parse_head), bounded: emptied when full, so a client
# sending ever new lines costs the checks it would cost anyway and memory stays capped
# (_LINES_MAX lines of at most _LINE_MAX bytes; longer lines, usually cookies, are not kept).
_LINES: dict[bytes, tuple[bytes, bytes]] = {}
_LINES_MAX: Final = 2048
_LINE_MAX: Final = 256
_SPECIAL: dict[bytes, tuple[bytes, bytes]] = {}
_SPECIAL_MAX: Final = 256
_lines_get = _LINES.get
_specials_get = _SPECIAL.get
_DROPPED: Final = (b"", b"")
# Membership tests on bytes take an int: ``b"_" in name`` first tries the needle as an int,
# and raising and clearing that TypeError costs six times the search itself (CPython 3.11,
# benchmarks/micro/RESULTS.md).
_UNDERSCORE: Final = 0x5F
# What dict.get gives for a line not in _LINES: an empty tuple, because list.count/index
# compare it with the (name, value) pairs by length at once (None would go through the slow
# path of a comparison between different types).
_MISS: Final = ()
# tchar (see _NAME_BYTES) to itself lowercased, every other byte to NUL: one C loop per name.
_NAME_LOWER: Final = bytes(
    (c | 0x20 if 0x41 <= c <= 0x5A else c) if c in _NAME_BYTES else 0 for c in range(256)
)
# A field value's valid bytes (see _FIELD_BYTES) to themselves, the others to something else.
_VALUE_SAME: Final = bytes(c if c in _FIELD_BYTES else (c + 1) % 256 for c in range(256))


# --- checks on both paths -------------------------------------------------------------------


def check_head(head: RequestHead, limits: Limits) -> None:
    """What we refuse beyond h11's grammar, on a head from either parser."""
    if head.chunked:
        if head.content_length is not None:
            # RFC 9112 section 6.1: both framings at once smells of request smuggling;
            # the server may reject it and must close the connection either way.
            raise RequestError(400, "both Transfer-Encoding and Content-Length")
        if head.http_version != b"1.1":
            # RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message MUST be
            # treated as faulty framing; HTTP/1.0 has no chunked coding to trust.
            raise RequestError(400, "Transfer-Encoding in an HTTP/1.0 request")
    host = head.host
    if host is not None and host not in _GOOD_HOSTS:
        if _HOST_RE.fullmatch(host) is None:
            # RFC 9112 section 3.2: 400 for a Host field with an invalid value (h11 already
            # answers a missing or repeated Host with 400).
            raise RequestError(400, "invalid Host header")
        if len(_GOOD_HOSTS) >= _GOOD_HOSTS_MAX:
            _GOOD_HOSTS.clear()
        _GOOD_HOSTS.add(host)
    limit = limits.body
    if limit is not None and head.content_length is not None and head.content_length > limit:
        raise RequestError(413, "request body larger than --limit-request-body")


# --- the h11 path -------------------------------------------------------------------------

# RFC 9112 section 5.2: obs-fold is a field line starting with SP or HTAB; a server MUST
# either reject it with 400 or replace it (h11 replaces it): we reject.
_OBS_FOLD: Final = re.compile(rb"\n[ \t]")
# RFC 9110 section 5.5: a field value with CR, LF or NUL MUST be rejected (h11 does); other
# control characters (but HTAB) are invalid too, and we reject them (h11 lets them through).
_CTL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_ABSOLUTE_RE: Final = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]+)")


def head_from_h11(request: h11.Request, raw: bytes | bytearray, limits: Limits) -> RequestHead:
    """Our head from h11's ``Request``; ``raw`` holds the head's bytes as received.

    Raises ``RequestError`` for what we refuse and h11 accepts.
    """
    if request.http_version not in (b"1.1", b"1.0"):
        raise RequestError(505, "HTTP version not supported")
    method = request.method
    target = request.target
    if method == b"CONNECT":
        # RFC 9110 section 9.3.6: CONNECT asks for a tunnel, which no ASGI application can
        # give; its authority-form target has no path to hand over either.
        raise RequestError(400, "CONNECT is not supported")
    if target[:1] != b"/" and not (target == b"*" and method == b"OPTIONS"):
        # Besides origin-form: absolute-form (any method, RFC 9112 section 3.2.2) and
        # asterisk-form (OPTIONS only, section 3.2.4); authority-form is for CONNECT only.
        absolute = _ABSOLUTE_RE.match(target)
        if absolute is None:
            raise RequestError(400, "invalid request-target")
    else:
        absolute = None
    if len(method) + len(target) + 10 > limits.line:
        # request-line = method SP request-target SP HTTP-version (RFC 9112 section 3).
        raise RequestError(414, "request line longer than --limit-request-line")
    items = request.headers._full_items  # (raw name, lowercased name, value), h11 >= 0.10
    if len(items) > limits.headers:
        raise RequestError(431, "more header fields than --limit-request-headers")
    if len(raw) > limits.size:
        size = 0
        for _raw, name, value in items:
            size += len(name) + len(value) + 4  # "name: value\r\n"
        if size > limits.size:
            raise RequestError(431, "header block larger than --limit-request-header-size")
    if _OBS_FOLD.search(raw) is not None:
        raise RequestError(400, "obsolete line folding in a header field")
    headers: list[tuple[bytes, bytes]] = []
    for _raw, name, value in items:
        if _CTL.search(value) is not None:
            raise RequestError(400, "control character in a header field value")
        if _UNDERSCORE in name:
            # CVE-2015-0219: Django (like CGI/WSGI) maps both "X-Auth-User" and
            # "X_Auth_User" to HTTP_X_AUTH_USER, so a client could spoof a header a
            # front proxy sets (the proxy strips only the dashed one).  Daphne and
            # Django's runserver drop such fields; so do we (no framing header has one).
            continue
        headers.append((name, value))
    head = RequestHead(method, target, request.http_version, headers)
    if absolute is not None:
        _use_authority(head, absolute.group(1))
    return head


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
