"""One frozen ``Config`` holding every server option.

The CLI (``server.cli``), environment variables (prefix ``CHANNELS_SERVER_``) and the
programmatic API (``server.run(app, **options)``) all end up here; everything downstream reads
options from this object only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

ENV_PREFIX = "CHANNELS_SERVER_"

LifespanMode = Literal["auto", "on", "off"]
LoopName = Literal["auto", "uvloop", "asyncio"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class ConfigError(ValueError):
    """A bad option value; the CLI prints its message on one line and exits 2."""


@dataclass(frozen=True)
class Config:
    # What to serve: an import string "module:attr" (or "module:attr.sub") or an ASGI callable.
    app: Any = None
    factory: bool = False
    app_dir: str | None = None

    # Where to listen.  Exactly one of (host, port) / uds / fd is used, in the order fd, uds, host.
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    backlog: int = 2048

    # ASGI scope details.
    root_path: str = ""
    proxy_headers: bool = False
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")

    # Logging and response headers.
    access_log: bool = True
    # Daphne-compatible: write access lines to this file ("-" = stdout) instead of stdout.
    access_log_file: str | None = None
    log_level: LogLevel = "info"
    server_header: bool = True
    date_header: bool = True
    server_name: str = "channels-server"

    # Timeouts (seconds).
    timeout_keep_alive: float = 5.0
    timeout_request_header: float = 10.0
    timeout_graceful_shutdown: float = 30.0
    application_close_timeout: float = 10.0

    # Limits.  None means unlimited.
    limit_concurrency: int | None = None
    limit_request_line: int = 8190
    limit_request_headers: int = 100
    limit_request_header_size: int = 65536
    limit_request_body: int | None = None
    limit_max_requests: int | None = None
    limit_max_requests_jitter: int = 0

    # WebSocket.
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_connect_timeout: float = 10.0
    ws_per_message_deflate: bool = False

    # HTTP/2: ALPN "h2" on TLS and cleartext h2c with prior knowledge (preface sniffed).
    http2: bool = True
    http2_max_concurrent_streams: int = 100
    # A response stream whose flow-control window stays shut this long is reset.
    http2_send_timeout: float = 30.0

    # Application lifecycle and runtime.
    lifespan: LifespanMode = "auto"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    loop: LoopName = "auto"
    workers: int = 1
    health_check_path: str | None = None

    # Free-form extras for embedding/tests; never read on the hot path.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def is_ssl(self) -> bool:
        return self.ssl_certfile is not None


def _positive(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None:
        if allow_none:
            return
        raise ConfigError(f"--{name.replace('_', '-')} must be given")
    if value <= 0:
        raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value!r}")


_FLOAT_FIELDS = (
    "timeout_keep_alive",
    "timeout_request_header",
    "timeout_graceful_shutdown",
    "application_close_timeout",
    "ws_ping_interval",
    "ws_ping_timeout",
    "ws_connect_timeout",
    "http2_send_timeout",
)


def _validate(c: Config) -> None:
    # NaN slips through every comparison below and inf overflows the event loop's timers
    # (uvloop raises on call_later(nan/inf)), so both must be refused up front.
    for name in _FLOAT_FIELDS:
        value = getattr(c, name)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
    if not (0 <= c.port <= 65535):
        raise ConfigError(f"--port must be between 0 and 65535, got {c.port}")
    if c.backlog < 1:
        raise ConfigError(f"--backlog must be at least 1, got {c.backlog}")
    for name in (
        "timeout_keep_alive",
        "timeout_request_header",
        "ws_connect_timeout",
        "http2_send_timeout",
    ):
        _positive(name, getattr(c, name))
    for name in ("timeout_graceful_shutdown", "application_close_timeout"):
        if getattr(c, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
    for name in ("limit_concurrency", "limit_request_body", "limit_max_requests"):
        _positive(name, getattr(c, name), allow_none=True)
    for name in (
        "limit_request_line",
        "limit_request_headers",
        "limit_request_header_size",
        "ws_max_size",
        "workers",
        "http2_max_concurrent_streams",
    ):
        _positive(name, getattr(c, name))
    for name in ("ws_ping_interval", "ws_ping_timeout"):
        _positive(name, getattr(c, name), allow_none=True)
    if c.limit_max_requests_jitter < 0:
        raise ConfigError("--limit-max-requests-jitter must not be negative")
    if c.lifespan not in ("auto", "on", "off"):
        raise ConfigError(f"--lifespan must be auto, on or off, got {c.lifespan!r}")
    if c.loop not in ("auto", "uvloop", "asyncio"):
        raise ConfigError(f"--loop must be auto, uvloop or asyncio, got {c.loop!r}")
    if c.log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise ConfigError(
            f"--log-level must be one of critical/error/warning/info/debug/trace, "
            f"got {c.log_level!r}"
        )
    if (c.ssl_certfile is None) != (c.ssl_keyfile is None):
        raise ConfigError("--ssl-certfile and --ssl-keyfile must be given together")
    if c.root_path and (not c.root_path.startswith("/") or c.root_path.endswith("/")):
        raise ConfigError(
            f"--root-path must start with '/' and not end with '/', got {c.root_path!r}"
        )
    if c.health_check_path is not None and not c.health_check_path.startswith("/"):
        raise ConfigError(f"--health-check-path must start with '/', got {c.health_check_path!r}")
    # The name goes verbatim into a response header: RFC 9110 §5.5 field values are visible
    # ASCII/latin-1 without CR, LF or NUL (anything else would allow response splitting).
    if c.server_name and (not c.server_name.isprintable() or not _is_latin1(c.server_name)):
        raise ConfigError(f"--server-name must be printable latin-1 text, got {c.server_name!r}")


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
