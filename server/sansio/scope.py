"""Building ASGI ``http`` / ``websocket`` scopes from a parsed request head.

Pure functions (no asyncio): the protocol computes the per-connection ``ConnectionInfo`` once
(from the transport's peer/socket names) and calls ``http_scope`` / ``websocket_scope`` per
request.  Proxy headers (``X-Forwarded-For``/``-Proto`` and RFC 7239 ``Forwarded``) are only
honoured when ``proxy_headers`` is on and the peer is a trusted proxy.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote

from server.sansio.request import RequestHead
from server.types import ASGIVersions, HTTPScope, WebSocketScope

ASGI_VERSION: ASGIVersions = {"version": "3.0", "spec_version": "2.4"}
_HTTP_VERSIONS = {b"1.1": "1.1", b"1.0": "1.0"}
_METHODS: dict[bytes, str] = {
    m: m.decode("ascii")
    for m in (
        b"GET",
        b"HEAD",
        b"POST",
        b"PUT",
        b"DELETE",
        b"PATCH",
        b"OPTIONS",
        b"TRACE",
        b"CONNECT",
    )
}

Address = tuple[str, int]


class TrustedProxies:
    """``--forwarded-allow-ips``: literal hosts, IP networks (CIDR) or ``*`` for everybody."""

    __slots__ = ("_hosts", "_networks", "everyone")

    def __init__(self, entries: Iterable[str]) -> None:
        self.everyone = False
        self._hosts: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in entries:
            for entry in raw.split(","):
                entry = entry.strip()
                if not entry:
                    continue
                if entry == "*":
                    self.everyone = True
                    continue
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    self._hosts.add(entry)  # e.g. "unix:" or a host name
        self._networks = tuple(networks)

    def __contains__(self, host: object) -> bool:
        if self.everyone:
            return True
        if not isinstance(host, str):
            return False
        if host in self._hosts:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)


@functools.lru_cache(maxsize=16)
def trusted_proxies(entries: tuple[str, ...]) -> TrustedProxies:
    """Parsed once per distinct ``forwarded_allow_ips`` value (Config is immutable)."""
    return TrustedProxies(entries)


class ConnectionInfo:
    """What every scope of one connection shares, computed once at ``connection_made``."""

    __slots__ = ("client", "proxy_trusted", "root_path", "root_raw", "secure", "server")

    def __init__(
        self,
        *,
        peername: Any,
        sockname: Any,
        secure: bool,
        root_path: str = "",
        proxy_headers: bool = False,
        forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1"),
    ) -> None:
        self.client = _address(peername)
        self.server = _address(sockname)
        self.secure = secure
        self.root_path = root_path
        # raw_path holds the bytes as sent, percent-encoded; the configured root_path is a
        # decoded path like scope["path"], so it is encoded once here.
        self.root_raw = quote(root_path).encode("ascii") if root_path else b""
        if not proxy_headers:
            self.proxy_trusted = False
        elif self.client is None:
            # A Unix-socket peer has no address to check; the socket's file permissions are
            # the access control, and a proxy in front is the usual reason to use one.
            self.proxy_trusted = True
        else:
            self.proxy_trusted = self.client[0] in trusted_proxies(forwarded_allow_ips)


def _address(name: Any) -> Address | None:
    if type(name) is tuple and len(name) == 2 and type(name[0]) is str and type(name[1]) is int:
        return name  # an IPv4 (host, port) as the transports give it: the common case
    if isinstance(name, tuple | list) and len(name) >= 2:
        return (str(name[0]), int(name[1]))
    return None  # Unix socket (a path string) or unknown


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """``(raw_path, query_string)`` from a request-target (RFC 9112 section 3.2)."""
    if target[:1] != b"/" and b"://" in target:
        # absolute-form: servers MUST accept it (RFC 9112 section 3.2.2); drop the scheme
        # (any, in any case: RFC 3986 section 3.1) and the authority.  The parser already
        # refused targets in no valid form, and put the authority in the Host header.
        rest = target.split(b"://", 1)[1]
        slash = rest.find(b"/")
        question = rest.find(b"?")
        if slash < 0 or (0 <= question < slash):
            target = b"/" + (rest[question:] if question >= 0 else b"")
        else:
            target = rest[slash:]
    raw_path, _sep, query_string = target.partition(b"?")
    return raw_path, query_string


def decode_path(raw_path: bytes) -> str:
    """Percent-decoded path as str (UTF-8; invalid sequences become U+FFFD)."""
    text = raw_path.decode("latin-1")  # h11 already limits the target to visible ASCII
    if "%" in text:
        return unquote(text, encoding="utf-8", errors="replace")
    return text


def proxy_client_and_scheme(
    headers: Sequence[tuple[bytes, bytes]],
    client: Address | None,
    trusted: TrustedProxies,
    scheme: str | None = None,
) -> tuple[Address | None, str | None]:
    """Client address and scheme as reported by trusted proxies (``scheme`` None: not given)."""
    forwarded: list[bytes] = []
    xff: list[bytes] = []
    xfp: list[bytes] = []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            xff.append(value)
        elif name == b"x-forwarded-proto":
            xfp.append(value)
    if forwarded:
        # RFC 7239: one element per hop, appended by each proxy; the header wins over X-F-*.
        elements = parse_forwarded(b",".join(forwarded).decode("latin-1"))
        hops = [(e.get("for"), e.get("proto")) for e in elements]
        index = _client_index([h[0] for h in hops], trusted)
        if index is not None:
            host, proto = hops[index]
            if host is not None:
                client = _node(host)
            if proto:
                scheme = proto.lower()
        return client, scheme
    if xff:
        hosts = [h.strip() for h in b",".join(xff).decode("latin-1").split(",")]
        index = _client_index(hosts, trusted)
        if index is not None and hosts[index]:
            client = _node(hosts[index])
        if xfp:
            protos = [p.strip() for p in b",".join(xfp).decode("latin-1").split(",")]
            # With one value per hop, take the client's; otherwise the first (the client's).
            proto = protos[index] if index is not None and len(protos) == len(hosts) else protos[0]
            if proto:
                scheme = proto.lower()
        return client, scheme
    if xfp:
        proto = b",".join(xfp).decode("latin-1").split(",")[0].strip()
        if proto:
            scheme = proto.lower()
    return client, scheme


def _client_index(hosts: Sequence[str | None], trusted: TrustedProxies) -> int | None:
    """Walk the hop list right to left past trusted proxies; the first other hop is the client."""
    if not hosts:
        return None
    for i in range(len(hosts) - 1, -1, -1):
        host = hosts[i]
        address = _node(host)[0] if host else ""
        if address not in trusted:
            return i
    return 0


def _node(value: str) -> Address:
    """An RFC 7239 node ("1.2.3.4", "1.2.3.4:80", "[::1]:80", "unknown", "_hidden")."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        host = value[1:end] if end > 0 else value[1:]
        port = value[end + 2 :] if end > 0 and value[end + 1 : end + 2] == ":" else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    return host, int(port) if port.isdigit() else 0


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """Parse a ``Forwarded`` field value (RFC 7239 section 4) into one dict per element.

    Parameter names are case-insensitive; values are tokens or quoted-strings.  Malformed pairs
    are skipped rather than failing the request.
    """
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    i, n = 0, len(value)
    while i < n:
        # name
        j = i
        while j < n and value[j] not in "=;,":
            j += 1
        name = value[i:j].strip().lower()
        if j < n and value[j] == "=":
            j += 1
            while j < n and value[j] in " \t":
                j += 1
            if j < n and value[j] == '"':
                j += 1
                chars: list[str] = []
                while j < n and value[j] != '"':
                    if value[j] == "\\" and j + 1 < n:
                        j += 1
                    chars.append(value[j])
                    j += 1
                j += 1  # closing quote
                item = "".join(chars)
                while j < n and value[j] not in ";,":
                    j += 1
            else:
                k = j
                while j < n and value[j] not in ";,":
                    j += 1
                item = value[k:j].strip()
            if name:
                current.setdefault(name, item)
        if j < n and value[j] == ",":
            elements.append(current)
            current = {}
        i = j + 1
    if current:
        elements.append(current)
    return elements


def _base_scope(
    head: RequestHead,
    info: ConnectionInfo,
    lifespan_state: dict[str, Any] | None,
    kind: str,
    scheme: str,
) -> Any:
    # The keys both scope types share, "type" and "scheme" included; the caller adds the rest
    # (a literal of this size leaves room for them: no resize).  Typed Any: a TypedDict cannot
    # be built in two steps, and one literal per type would write these keys twice.
    raw_path, query_string = split_target(head.target)
    path = decode_path(raw_path)
    root_path = info.root_path
    if root_path:
        # ASGI: "path" includes "root_path" (WSGI's SCRIPT_NAME + PATH_INFO).
        path = root_path + path
        raw_path = info.root_raw + raw_path
    return {
        "type": kind,
        "asgi": ASGI_VERSION,
        "http_version": _HTTP_VERSIONS.get(head.http_version) or head.http_version.decode(),
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query_string,
        "root_path": root_path,
        "headers": head.headers,
        "client": info.client,
        "server": info.server,
        "state": dict(lifespan_state) if lifespan_state is not None else {},
    }


def _apply_proxy(
    scope: HTTPScope | WebSocketScope,
    head: RequestHead,
    info: ConnectionInfo,
    trusted: TrustedProxies,
) -> str | None:
    client, scheme = proxy_client_and_scheme(head.headers, info.client, trusted)
    scope["client"] = client
    return scheme


def http_scope(
    head: RequestHead,
    info: ConnectionInfo,
    *,
    lifespan_state: dict[str, Any] | None = None,
    extensions: dict[str, dict[str, Any]] | None = None,
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1"),
) -> HTTPScope:
    scope: HTTPScope = _base_scope(
        head, info, lifespan_state, "http", "https" if info.secure else "http"
    )
    method = head.method
    scope["method"] = _METHODS.get(method) or method.decode("ascii")
    if extensions is not None:
        scope["extensions"] = extensions
    if info.proxy_trusted:
        proto = _apply_proxy(scope, head, info, trusted_proxies(forwarded_allow_ips))
        if proto in ("http", "https"):
            scope["scheme"] = proto
        elif proto in ("ws", "wss"):
            scope["scheme"] = "https" if proto == "wss" else "http"
    return scope


def websocket_scope(
    head: RequestHead,
    info: ConnectionInfo,
    *,
    lifespan_state: dict[str, Any] | None = None,
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1"),
) -> WebSocketScope:
    """The websocket scope for the upgrade hand-off (``subprotocols``/``extensions`` are filled
    in by the WebSocket protocol, which validates the handshake)."""
    scheme = "wss" if info.secure else "ws"
    scope: WebSocketScope = _base_scope(head, info, lifespan_state, "websocket", scheme)
    if info.proxy_trusted:
        proto = _apply_proxy(scope, head, info, trusted_proxies(forwarded_allow_ips))
        if proto in ("https", "wss"):
            scheme = "wss"
        elif proto in ("http", "ws"):
            scheme = "ws"
    scope["scheme"] = scheme
    return scope
