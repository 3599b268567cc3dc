"""An HTTP/2 request head: the decoded field list checked against RFC 9113 sections 8.2 and 8.3
(``h2``'s own inbound checks are off: this one pass does them and builds the head) and turned
into what the scope builder reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# Connection-specific header fields a response must not carry (RFC 9113 section 8.2.2).
CONNECTION_FIELDS: Final = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)

# tchar (RFC 9110 section 5.6.2), lower case only: HTTP/2 field names are lower case.
NAME_CHARS: Final = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"

# What RFC 9113 section 8.2.1 allows in a received field name: 0x21-0x7e without upper case,
# and no colon (only pseudo-header names start with one, and they are matched exactly).
_NAME_OK: Final = bytes(c for c in range(0x21, 0x7F) if not 0x41 <= c <= 0x5A and c != 0x3A)
_WHITESPACE: Final = (0x20, 0x09)
# Names already checked, so the fields a client repeats on every request cost a set lookup;
# emptied when full so varied names cannot grow it without bound.
_GOOD_NAMES: set[bytes] = set()
_GOOD_NAMES_MAX: Final = 1024
# Heads already parsed, by their exact field list: clients send the same head for every
# request of a page or a load run (HPACK-indexed, RepeatingDecoder), which then costs a copy.
# Emptied when full, like the sets above; only heads of a browser's size are kept, so what the
# table holds stays within _HEADS_MAX * _HEAD_BYTES whatever clients send.
_HEADS: dict[tuple[tuple[bytes, bytes], ...], tuple[int, H2Head]] = {}
_HEADS_MAX: Final = 256
_HEAD_BYTES: Final = 8192


class H2Head:
    """A request's pseudo-header fields and the facts the server needs from its fields.

    Shaped like the HTTP/1.1 ``RequestHead`` where the scope builder reads it (``method``,
    ``target``, ``http_version``, ``headers``), so one scope builder serves both.
    """

    __slots__ = (
        "content_length",
        "expect_continue",
        "headers",
        "http_version",
        "method",
        "protocol",
        "scheme",
        "target",
        "te_trailers",
        "websocket",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.scheme = b""
        self.protocol = b""
        self.http_version = b"2"
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.expect_continue = False
        self.te_trailers = False
        self.websocket = False

    def copy(self) -> H2Head:
        new = H2Head.__new__(H2Head)
        new.method = self.method
        new.target = self.target
        new.scheme = self.scheme
        new.protocol = self.protocol
        new.http_version = self.http_version
        new.headers = list(self.headers)
        new.content_length = self.content_length
        new.expect_continue = self.expect_continue
        new.te_trailers = self.te_trailers
        new.websocket = self.websocket
        return new


class HeadError(Exception):
    """A request head we answer with an HTTP error on its stream (status, reason), or, with
    status 0, a malformed one whose stream is reset."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _malformed(reason: str) -> HeadError:
    """RFC 9113 section 8.1.1: a malformed request is a stream error PROTOCOL_ERROR."""
    return HeadError(0, reason)


def _check_value(value: bytes) -> None:
    # RFC 9113 section 8.2.1: no NUL, CR or LF anywhere, no SP/HTAB at either end.
    if 0 in value or 13 in value or 10 in value:
        raise _malformed("invalid character in a field value")
    if value[0] in _WHITESPACE or value[-1] in _WHITESPACE:
        raise _malformed("field value starts or ends with whitespace")


def _check_name(name: bytes) -> None:
    if name not in _GOOD_NAMES:
        if not name or name.translate(None, _NAME_OK):
            raise _malformed(f"invalid field name {name!r}")
        if len(_GOOD_NAMES) >= _GOOD_NAMES_MAX:
            _GOOD_NAMES.clear()
        _GOOD_NAMES.add(name)


def parse_head(fields: Iterable[tuple[bytes, bytes]], *, max_fields: int) -> H2Head:
    """Check a decoded request header list (RFC 9113 sections 8.2 and 8.3) and build its
    ``H2Head``.  ``HeadError`` with status 0 for a malformed request (the stream is reset with
    PROTOCOL_ERROR), else the HTTP status to answer with."""
    key = tuple(fields)
    try:
        known = _HEADS.get(key)
    except TypeError:  # a field given as a list: parsed, not remembered
        return _parse(key, max_fields)
    if known is not None and known[0] == max_fields:
        return known[1].copy()
    head = _parse(key, max_fields)
    if sum(len(name) + len(value) for name, value in key) <= _HEAD_BYTES:
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        _HEADS[key] = (max_fields, head.copy())
    return head


def _parse(fields: tuple[tuple[bytes, bytes], ...], max_fields: int) -> H2Head:
    head = H2Head()
    headers = head.headers
    method = scheme = path = authority = protocol = host = None
    cookies: list[bytes] = []
    host_index = -1
    regular = False
    for name, value in fields:
        if value:
            # RFC 9113 section 8.2.1 (as _check_value, written out: it runs for every field)
            if 0 in value or 13 in value or 10 in value:
                raise _malformed("invalid character in a field value")
            if value[0] in _WHITESPACE or value[-1] in _WHITESPACE:
                raise _malformed("field value starts or ends with whitespace")
        if name[:1] == b":":
            # RFC 9113 section 8.3: request pseudo-header fields only, each once, all before
            # the regular fields.
            if regular:
                raise _malformed("pseudo-header field after a regular field")
            if name == b":method" and method is None:
                method = value
            elif name == b":path" and path is None:
                path = value
            elif name == b":scheme" and scheme is None:
                scheme = value
            elif name == b":authority" and authority is None:
                authority = value
            elif name == b":protocol" and protocol is None:
                protocol = value
            else:
                raise _malformed(f"unknown or repeated pseudo-header field {name!r}")
            continue
        regular = True
        _check_name(name)
        if name in CONNECTION_FIELDS:
            raise _malformed(f"connection-specific field {name!r}")  # RFC 9113 section 8.2.2
        if 0x5F in name:  # "_" (an int needle: see request._UNDERSCORE)
            # CVE-2015-0219, as in HTTP/1.1: "x_auth_user" would shadow "x-auth-user" in WSGI
            # style environments (Django's META).
            continue
        if name == b"cookie":
            # RFC 9113 section 8.2.3: crumbs split over several fields are joined with "; "
            # before the request reaches an HTTP/1.1 style consumer.
            cookies.append(value)
            continue
        if name == b"content-length":
            # (h2 refuses a non-numeric one before this runs; -1 is answered after the checks)
            head.content_length = int(value) if value.isdigit() else -1
        elif name == b"expect":
            head.expect_continue = value.lower() == b"100-continue"
        elif name == b"te":
            # RFC 9113 section 8.2.2: the only TE value allowed in HTTP/2 is "trailers".
            if value.lower() != b"trailers":
                raise _malformed("TE other than trailers")
            head.te_trailers = True
        elif name == b"host":
            if host is not None:
                raise _malformed("more than one Host field")
            host = value
            host_index = len(headers)
        headers.append((name, value))
    if method is None:
        raise _malformed("no :method")
    if protocol is not None and method != b"CONNECT":
        raise _malformed(":protocol outside CONNECT")  # RFC 8441 section 4
    if method != b"CONNECT" or protocol is not None:
        # RFC 9113 section 8.3.1 (and RFC 8441 section 4 for extended CONNECT).
        if scheme is None or not path:
            raise _malformed("no :scheme or :path")
    elif scheme is not None or path is not None:
        raise _malformed("CONNECT with :scheme or :path")  # RFC 9113 section 8.5
    if authority is None and host is None:
        raise _malformed("no :authority or Host")
    if authority is not None and host is not None and authority != host:
        # RFC 9113 section 8.3.1: a Host naming another entity than :authority.
        raise _malformed(":authority and Host differ")
    if head.content_length == -1:
        raise HeadError(400, "invalid content-length")
    head.method = method
    head.target = path or b""
    head.scheme = scheme or b""
    head.protocol = protocol or b""
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    if len(headers) > max_fields:
        raise HeadError(431, "too many header fields")
    if authority:
        # ASGI (HTTP/2): :authority goes first as "host", replacing a Host field if any.
        if host_index >= 0:
            del headers[host_index]
        headers.insert(0, (b"host", authority))
    if method == b"CONNECT":
        if head.protocol.lower() == b"websocket":
            head.websocket = True  # RFC 8441 section 4: extended CONNECT
        else:
            raise HeadError(405, "CONNECT is not supported")
    elif not head.target.startswith(b"/") and not (method == b"OPTIONS" and head.target == b"*"):
        raise HeadError(400, "invalid :path")
    return head


def trailers_malformed(fields: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why a request's trailer fields make it malformed (RFC 9113 sections 8.1 and 8.2), or
    None: no pseudo-header fields, the same name and value rules as the head."""
    try:
        for name, value in fields:
            if value:
                _check_value(value)
            if name[:1] == b":":
                return "pseudo-header field in trailers"
            _check_name(name)
            if name in CONNECTION_FIELDS:
                return f"connection-specific field {name!r}"
    except HeadError as exc:
        return exc.reason
    return None
