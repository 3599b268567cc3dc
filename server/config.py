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
AccessLogFormat = Literal["text", "json"]


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
    # "json": one JSON object per request and per WebSocket session (server.access_log).
    access_log_format: AccessLogFormat = "text"
    # logging.config file applied after our own setup: .json / .yaml / .yml (dictConfig) or
    # anything else (fileConfig, ini syntax).
    log_config: str | None = None
    server_header: bool = True
    date_header: bool = True
    server_name: str = "channels-server"
    # Extra "name: value" response headers sent on every response (including 101 and WebSocket
    # denials), next to Server and Date.
    headers: tuple[str, ...] = ()

    # Timeouts (seconds).
    timeout_keep_alive: float = 5.0
    timeout_request_header: float = 10.0
    # A request body that makes no progress for this long is given up (408 if no response).
    timeout_request_body: float = 10.0
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
    # File of KEY=value lines loaded into the environment before anything else reads it.
    env_file: str | None = None

    # Prometheus metrics (server.metrics): a separate listener and/or a path on the main one.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_path: str | None = None

    # Development: restart the server process when watched files change.
    reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    reload_includes: tuple[str, ...] = ("*.py",)
    reload_excludes: tuple[str, ...] = (".*", "*~", "*.py[cod]", "__pycache__")

    # Free-form extras for embedding/tests; never read on the hot path.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def is_ssl(self) -> bool:
        return self.ssl_certfile is not None

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_port is not None or self.metrics_path is not None

    @property
    def header_lines(self) -> bytes:
        """``--header`` values as response header lines (validated in ``_validate``)."""
        return b"".join(
            name.strip().lower().encode("ascii") + b": " + value.strip().encode("latin-1") + b"\r\n"
            for name, _, value in (h.partition(":") for h in self.headers)
        )


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
    "timeout_request_body",
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
        "timeout_request_body",
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
    for header in c.headers:
        _check_header(header)
    if c.access_log_format not in ("text", "json"):
        raise ConfigError(f"--access-log-format must be text or json, got {c.access_log_format!r}")
    if c.metrics_port is not None and not (0 <= c.metrics_port <= 65535):
        raise ConfigError(f"--metrics-port must be between 0 and 65535, got {c.metrics_port}")
    if c.metrics_path is not None:
        if not c.metrics_path.startswith("/"):
            raise ConfigError(f"--metrics-path must start with '/', got {c.metrics_path!r}")
        if c.metrics_path == c.health_check_path:
            raise ConfigError("--metrics-path and --health-check-path must differ")
    if c.reload and c.workers > 1:
        raise ConfigError("--reload cannot be combined with --workers > 1")
    if c.reload and not isinstance(c.app, str):
        raise ConfigError("--reload needs the application as an import string 'module:attribute'")


# RFC 9110 section 5.6.2: a field name is a token.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Framing and connection management are the server's (RFC 9112 section 6); a fixed header
# cannot know the body or the upgrade state of each response.
_RESERVED_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "keep-alive",
        "te",
        "trailer",
        "server",
        "date",
    }
)


def _check_header(raw: str) -> None:
    name, sep, value = raw.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise ConfigError(f"--header must look like 'name:value', got {raw!r}")
    if not set(name) <= _TOKEN:
        raise ConfigError(f"--header name {name!r} is not a valid field name")
    if name.lower() in _RESERVED_HEADERS:
        raise ConfigError(
            f"--header {name}: set by the server itself"
            + (
                " (use --server-name / --no-date-header)"
                if name.lower() in ("server", "date")
                else ""
            )
        )
    # RFC 9110 section 5.5: no CR, LF or NUL (response splitting), visible latin-1 text.
    if not value.isprintable() or not _is_latin1(value):
        raise ConfigError(f"--header {name}: value must be printable latin-1 text, got {value!r}")


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
