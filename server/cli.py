"""``python -m server myproject.asgi:application [options]``.

Precedence: ``Config`` defaults < ``CHANNELS_SERVER_<FIELD>`` environment variables < flags given
on the command line.  Every flag is registered with ``default=SUPPRESS`` so that the parsed
namespace holds only what the user actually typed, which is what makes the layering exact.

Daphne spellings are accepted where they mean the same thing: ``-b/--bind``, ``-p/--port``,
``-u/--unix-socket``, ``--fd``, ``--ping-interval``, ``--ping-timeout``,
``--websocket_connect_timeout``, ``--application-close-timeout``, ``--root-path``,
``--proxy-headers``, ``-s/--server-name``, ``--no-server-name``, ``-v/--verbosity 0-3``.
Daphne's ``--access-log PATH`` is accepted as ``--access-log=PATH`` (with ``=``): here a bare
``--access-log`` is an on/off flag, so a following word would be taken for the app path.

Errors are reported on one stderr line and exit 2 (usage/config) - never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NoReturn

import server
from server.config import ENV_PREFIX, Config, ConfigError
from server.runtime import EXIT_USAGE, report_error, run_config

PROG = "channels-server"

_HINTS = typing.get_type_hints(Config)
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Config) if f.default is not dataclasses.MISSING
}
# Fields not settable from outside (``extra`` is for embedding only).
_INTERNAL = frozenset({"extra"})

# Tuple options whose environment variable holds one item per line instead of a comma list.
_LINE_LISTS = frozenset({"headers"})
# Tuple options given by repeating the flag (each occurrence is one item).
_REPEATED = frozenset({"headers", "reload_dirs", "reload_includes", "reload_excludes"})

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

VERBOSITY = {"0": "warning", "1": "info", "2": "debug", "3": "trace"}


def parse_value(name: str, raw: str) -> Any:
    """Convert ``raw`` text to the type of ``Config.<name>``; ValueError with a clear message."""
    hint: Any = _HINTS[name]
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    text = raw.strip()
    if optional and text.lower() in ("", "none"):
        return None
    if hint is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected a boolean (1/0/true/false/yes/no), got {raw!r}")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
    if hint is float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {raw!r}")
        return number
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if text.lower() in choices:
            return text.lower()
        raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
    if typing.get_origin(hint) is tuple:
        # Header values may hold commas (Cache-Control: a, b): headers are one per line.
        sep = "\n" if name in _LINE_LISTS else ","
        return tuple(part.strip() for part in text.split(sep) if part.strip())
    return text


def _arg_type(name: str) -> Callable[[str], Any]:
    def convert(raw: str) -> Any:
        try:
            return parse_value(name, raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in some messages
    return convert


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus the message; one line is easier to spot in service logs.
        if message.startswith("unrecognized arguments:"):
            known = [o for o in self._option_string_actions if o.startswith("--")]
            for word in message.partition(":")[2].split():
                close = difflib.get_close_matches(word.partition("=")[0], known, 1)
                if word.startswith("--") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        report_error(f"{message} (see --help)")
        sys.exit(EXIT_USAGE)


def _help(text: str, name: str) -> str:
    default = _DEFAULTS.get(name)
    if isinstance(default, tuple):
        default = ",".join(default) or None
    shown = "unset" if default is None else ("on" if default is True else default)
    shown = "off" if default is False else shown
    env = ENV_PREFIX + name.upper()
    return f"{text} [default: {shown}; env {env}]".replace("%", "%%")


def _metavar(name: str) -> str:
    text = str(_HINTS[name])
    if name.startswith(("timeout_", "ws_ping_", "ws_connect_")) or name.endswith("_timeout"):
        return "SECONDS"
    if "int" in text:
        return "N"
    return name.rsplit("_", 1)[-1].upper()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Serve an ASGI application (Django Channels compatible) over HTTP/1.1 "
        "and WebSocket.",
        allow_abbrev=False,
        argument_default=argparse.SUPPRESS,
        epilog=f"Every option can also be set with {ENV_PREFIX}<OPTION> (e.g. "
        f"{ENV_PREFIX}PORT=9000, booleans 1/0/true/false/yes/no); flags win over the "
        "environment.  Exit codes: 0 stopped cleanly, 1 runtime error (port in use, app failed "
        "to import, forced stop), 2 bad usage or configuration, 3 application startup failed.",
    )
    S = argparse.SUPPRESS
    target: argparse._ActionsContainer = p

    def opt(name: str, *flags: str, help: str, metavar: str | None = None) -> None:
        if metavar is None:
            metavar = _metavar(name)
        target.add_argument(
            *flags, dest=name, type=_arg_type(name), metavar=metavar, help=_help(help, name)
        )

    def many(name: str, *flags: str, help: str, metavar: str) -> None:
        target.add_argument(
            *flags, dest=name, action="append", metavar=metavar, help=_help(help, name)
        )

    def flag(name: str, *flags: str, help: str) -> None:
        target.add_argument(
            *flags, dest=name, action=argparse.BooleanOptionalAction, help=_help(help, name)
        )

    p.add_argument(
        "app",
        nargs="?",
        default=S,
        metavar="APP",
        help="the application as 'module:attribute', e.g. myproject.asgi:application "
        f"[env {ENV_PREFIX}APP]",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {server.__version__}")

    target = p.add_argument_group("application")
    target.add_argument(
        "--factory",
        dest="factory",
        action="store_true",
        help=_help("treat APP as a factory: call it with no arguments to get the app", "factory"),
    )
    opt("app_dir", "--app-dir", help="directory to put first on sys.path", metavar="DIR")
    opt("lifespan", "--lifespan", help="ASGI lifespan events: auto, on or off", metavar="MODE")
    opt("root_path", "--root-path", help="ASGI root_path, for apps mounted below a URL prefix")

    target = p.add_argument_group("listening socket")
    opt("host", "--host", "-b", "--bind", help="interface to bind (IPv4 or IPv6 address)")
    opt("port", "--port", "-p", help="TCP port (0 picks a free one)")
    opt("uds", "--uds", "-u", "--unix-socket", help="bind a Unix domain socket", metavar="PATH")
    opt("fd", "--fd", help="serve on an inherited, already-bound socket file descriptor")
    opt("backlog", "--backlog", help="listen() backlog")
    opt("workers", "--workers", help="number of worker processes sharing the socket")
    opt("loop", "--loop", help="event loop: auto, uvloop or asyncio")
    opt("ssl_certfile", "--ssl-certfile", help="TLS certificate (PEM)", metavar="FILE")
    opt("ssl_keyfile", "--ssl-keyfile", help="TLS private key (PEM)", metavar="FILE")
    opt("ssl_keyfile_password", "--ssl-keyfile-password", help="password of the TLS key")

    target = p.add_argument_group("HTTP")
    flag("proxy_headers", "--proxy-headers", help="trust X-Forwarded-For/-Proto from proxies")
    opt(
        "forwarded_allow_ips",
        "--forwarded-allow-ips",
        help="comma-separated proxy addresses trusted for proxy headers ('*' = all)",
        metavar="IPS",
    )
    flag("server_header", "--server-header", help="send a Server header")
    target.add_argument(
        "--no-server-name",
        dest="server_header",
        action="store_false",
        help="same as --no-server-header (Daphne spelling)",
    )
    opt("server_name", "--server-name", "-s", help="value of the Server header", metavar="NAME")
    flag("date_header", "--date-header", help="send a Date header")
    many(
        "headers",
        "--header",
        help="add 'name:value' to every response (repeatable; env: one per line)",
        metavar="NAME:VALUE",
    )
    opt(
        "health_check_path",
        "--health-check-path",
        help="answer 200 on this path without calling the app",
        metavar="PATH",
    )

    target = p.add_argument_group("timeouts (seconds)")
    opt("timeout_keep_alive", "--timeout-keep-alive", help="close idle keep-alive connections")
    opt(
        "timeout_request_header",
        "--timeout-request-header",
        help="time allowed to receive a request head",
    )
    opt(
        "timeout_request_body",
        "--timeout-request-body",
        help="give up a request body that makes no progress for this long (408)",
    )
    opt(
        "timeout_graceful_shutdown",
        "--timeout-graceful-shutdown",
        help="wait this long for in-flight requests on shutdown",
    )
    opt(
        "application_close_timeout",
        "--application-close-timeout",
        help="time an app may take to finish after its client disconnected",
    )

    target = p.add_argument_group("limits")
    opt(
        "limit_concurrency",
        "--limit-concurrency",
        help="answer 503 beyond this many connections+tasks",
    )
    opt("limit_request_line", "--limit-request-line", help="max request line bytes")
    opt("limit_request_headers", "--limit-request-headers", help="max number of header fields")
    opt(
        "limit_request_header_size",
        "--limit-request-header-size",
        help="max bytes of the request head",
    )
    opt("limit_request_body", "--limit-request-body", help="max request body bytes (413 above)")
    opt(
        "limit_max_requests",
        "--limit-max-requests",
        help="restart the worker after this many requests",
    )
    opt(
        "limit_max_requests_jitter",
        "--limit-max-requests-jitter",
        help="add random 0..N to --limit-max-requests per worker",
    )

    target = p.add_argument_group("WebSocket")
    opt("ws_max_size", "--ws-max-size", help="max message size in bytes (close 1009 above)")
    opt(
        "ws_ping_interval",
        "--ws-ping-interval",
        "--ping-interval",
        help="send a ping this often ('none' disables)",
    )
    opt(
        "ws_ping_timeout",
        "--ws-ping-timeout",
        "--ping-timeout",
        help="close if no pong within this many seconds ('none' disables)",
    )
    opt(
        "ws_connect_timeout",
        "--ws-connect-timeout",
        "--websocket_connect_timeout",
        help="time the app has to accept or reject a handshake",
    )
    flag(
        "ws_per_message_deflate",
        "--ws-per-message-deflate",
        help="negotiate permessage-deflate (RFC 7692)",
    )

    target = p.add_argument_group("HTTP/2")
    flag("http2", "--http2", help="serve HTTP/2: ALPN h2 on TLS, h2c with prior knowledge")
    opt(
        "http2_max_concurrent_streams",
        "--http2-max-concurrent-streams",
        help="SETTINGS_MAX_CONCURRENT_STREAMS: streams in progress per connection",
        metavar="N",
    )
    opt(
        "http2_send_timeout",
        "--http2-send-timeout",
        help="reset a response stream whose flow-control window stays shut this long",
    )

    target = p.add_argument_group("logging")
    opt(
        "log_level",
        "--log-level",
        help="critical, error, warning, info, debug or trace",
        metavar="LEVEL",
    )
    target.add_argument(
        "-v",
        "--verbosity",
        dest="verbosity",
        choices=sorted(VERBOSITY),
        help="Daphne spelling: 0=warning 1=info 2=debug 3=trace (--log-level wins)",
    )
    flag("access_log", "--access-log", help="log one line per request")
    opt(
        "access_log_file",
        "--access-log-file",
        help="write access lines to this file ('-' = stdout); also --access-log=PATH",
        metavar="PATH",
    )
    opt(
        "access_log_format",
        "--access-log-format",
        help="text (one line) or json (one JSON object per request and WebSocket session)",
        metavar="FORMAT",
    )
    opt(
        "log_config",
        "--log-config",
        help="logging config file: .json/.yaml/.yml (dictConfig) or ini (fileConfig)",
        metavar="FILE",
    )

    target = p.add_argument_group("metrics (Prometheus; pip install 'channels-server[metrics]')")
    opt("metrics_port", "--metrics-port", help="serve /metrics on this separate port")
    opt("metrics_host", "--metrics-host", help="interface of the --metrics-port listener")
    opt(
        "metrics_path",
        "--metrics-path",
        help="also serve metrics on this path of the main listener",
        metavar="PATH",
    )

    target = p.add_argument_group("development")
    opt("env_file", "--env-file", help="load KEY=value lines into the environment", metavar="FILE")
    flag("reload", "--reload", help="restart the server when files change (one worker only)")
    many(
        "reload_dirs",
        "--reload-dir",
        help="directory to watch (repeatable; default: the current directory and --app-dir)",
        metavar="DIR",
    )
    many(
        "reload_includes",
        "--reload-include",
        help="glob of file names that trigger a reload (repeatable)",
        metavar="GLOB",
    )
    many(
        "reload_excludes",
        "--reload-exclude",
        help="glob of file or directory names ignored by --reload (repeatable)",
        metavar="GLOB",
    )
    return p


def _rewrite_daphne_access_log(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if arg.startswith("--access-log="):
            out += ["--access-log-file", arg.partition("=")[2]]
        else:
            out.append(arg)
    return out


def options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    known = {ENV_PREFIX + f.name.upper(): f.name for f in dataclasses.fields(Config)}
    options: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = known.get(key)
        if name is None or name in _INTERNAL:
            close = difflib.get_close_matches(
                key, [k for k, v in known.items() if v not in _INTERNAL], 1
            )
            hint = f" (did you mean {close[0]}?)" if close else ""
            print(
                f"{PROG}: warning: ignoring unknown environment variable {key}{hint}",
                file=sys.stderr,
            )
            continue
        if name == "app":
            options[name] = raw
            continue
        try:
            options[name] = parse_value(name, raw)
        except ValueError as exc:
            raise ConfigError(f"environment variable {key}: {exc}") from None
    return options


def build_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Parse ``argv`` (default ``sys.argv[1:]``) over env over defaults; ConfigError if bad."""
    args = build_parser().parse_args(
        _rewrite_daphne_access_log(sys.argv[1:] if argv is None else argv)
    )
    given = vars(args)
    for name in _REPEATED & given.keys():
        given[name] = tuple(given[name])
    real_env = environ is None
    environ = dict(os.environ if environ is None else environ)
    env_file = given.get("env_file") or environ.get(ENV_PREFIX + "ENV_FILE")
    if env_file:
        from server.envfile import load_env_file

        # Variables already set win over the file (as with systemd EnvironmentFile plus
        # Environment=); the file may also hold CHANNELS_SERVER_* options.
        for key, value in load_env_file(env_file).items():
            environ.setdefault(key, value)
            if real_env:  # the application reads them too
                os.environ.setdefault(key, value)
    options = options_from_env(environ)
    verbosity = given.pop("verbosity", None)
    if verbosity is not None and "log_level" not in given:
        given["log_level"] = VERBOSITY[verbosity]
    options.update(given)
    if "access_log_file" in options and "access_log" not in given:
        options["access_log"] = True  # asking for a file means wanting the log
    if not options.get("app"):
        raise ConfigError(
            f"missing the application, e.g. '{PROG} myproject.asgi:application' (see --help)"
        )
    return Config(**options)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = build_config(argv)
    except ConfigError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    from server.logging_setup import configure_logging

    try:
        configure_logging(config)
    except OSError as exc:  # e.g. --access-log-file in a missing directory
        report_error(f"--access-log-file {config.access_log_file}: {exc.strerror or exc}")
        return EXIT_USAGE
    except ConfigError as exc:  # --log-config
        report_error(str(exc))
        return EXIT_USAGE
    from server.installation import installation_problem

    # Before the app is imported: a foreign ``channels`` would otherwise fail in odd ways later.
    problem = installation_problem()
    if problem is not None:
        report_error(problem)
        return EXIT_USAGE
    if config.reload:
        from server.reload import run_with_reload

        return run_with_reload(config)
    return run_config(config)
