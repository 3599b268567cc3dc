"""Listening sockets and the TLS context: bind TCP, ``--uds`` or an inherited ``--fd``.

Every failure is a :class:`~server.errors.StartupError` with the one line shown to the user.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import stat

from server.config import Config
from server.errors import EXIT_USAGE, StartupError


# --- TLS -----------------------------------------------------------------------------------------
def create_ssl_context(config: Config) -> ssl.SSLContext | None:
    if config.ssl_certfile is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, password=config.ssl_keyfile_password
        )
    except FileNotFoundError as exc:
        raise StartupError(
            f"--ssl-certfile/--ssl-keyfile: file not found: {exc.filename}", EXIT_USAGE
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise StartupError(
            f"cannot load TLS certificate/key ({config.ssl_certfile}, {config.ssl_keyfile}): "
            f"{exc.strerror or exc} (wrong file or --ssl-keyfile-password?)",
            EXIT_USAGE,
        ) from None
    # ALPN (RFC 7301): h2 first when enabled; the HTTP/1.1 protocol hands a connection that
    # chose "h2" to server.protocols.h2 (see HttpProtocol.connection_made).
    ctx.set_alpn_protocols(["h2", "http/1.1"] if config.http2 else ["http/1.1"])
    return ctx


# --- sockets -----------------------------------------------------------------------------------
def _bind_error(where: str, exc: OSError) -> StartupError:
    if exc.errno == errno.EADDRINUSE:
        return StartupError(f"cannot listen on {where}: address already in use")
    reason = exc.strerror or str(exc)
    return StartupError(f"cannot listen on {where}: {reason}")


def _bind_uds(path: str, backlog: int) -> socket.socket:
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise StartupError(f"--uds {path}: exists and is not a socket; refusing to replace it")
        # A socket file is left behind when a server dies without cleanup.  Only remove it if
        # nobody answers on it; otherwise another server owns it.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
        else:
            raise StartupError(f"cannot listen on unix:{path}: address already in use")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # Readable/writable by everyone so a reverse proxy running as another user can connect;
        # restrict access with the permissions of the containing directory.
        os.chmod(path, 0o666)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _bind_error(f"unix:{path}", exc) from None
    return sock


def _bind_fd(fd: int, backlog: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise StartupError(f"--fd {fd}: not an open socket ({exc.strerror or exc})") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise StartupError(f"--fd {fd}: not a stream socket")
    try:
        # Inherited sockets (systemd, a process manager) are usually listening already; listen()
        # again only updates the backlog.
        sock.listen(backlog)
    except OSError as exc:
        sock.detach()
        raise StartupError(f"--fd {fd}: cannot listen ({exc.strerror or exc})") from None
    return sock


def _bind_tcp(host: str, port: int, backlog: int) -> socket.socket:
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    where = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"
    try:
        infos = socket.getaddrinfo(
            bare or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(
            f"--host {host!r}: cannot resolve ({exc.strerror})", EXIT_USAGE
        ) from None
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _bind_error(where, exc) from None
    return sock


def bind_metrics_socket(config: Config) -> socket.socket:
    """The ``--metrics-port`` listener (only a scraper connects: a small backlog will do)."""
    assert config.metrics_port is not None
    return _bind_tcp(config.metrics_host, config.metrics_port, 128)


def bind_sockets(config: Config) -> list[socket.socket]:
    """Open the listening socket described by ``config`` (fd, then uds, then host/port)."""
    if config.fd is not None:
        return [_bind_fd(config.fd, config.backlog)]
    if config.uds is not None:
        return [_bind_uds(config.uds, config.backlog)]
    return [_bind_tcp(config.host, config.port, config.backlog)]


def describe_address(sock: socket.socket, tls: bool) -> str:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    scheme = "https" if tls else "http"
    host, port = name[0], name[1]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
