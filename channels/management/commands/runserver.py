"""``manage.py runserver`` serving ASGI (HTTP + WebSocket) with channels-server.

Keeps all of Django's options (address:port, ``--ipv6``, ``--noreload``, ``--nostatic``,
``--insecure``, ``--skip-checks``) and its autoreloader.  When ``settings.ASGI_APPLICATION`` is
not set it falls back to Django's own WSGI development server.  "channels" must come before
"django.contrib.staticfiles" in INSTALLED_APPS for this command to take precedence.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sys
from datetime import datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management import CommandParser
from django.db import connections
from django.utils import autoreload

from server.config import LogLevel

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as RunserverCommand,
    )
else:  # pragma: no cover - depends on the project's INSTALLED_APPS
    from django.core.management.commands.runserver import (  # type: ignore[assignment]
        Command as RunserverCommand,
    )

_VERBOSITY_LOG_LEVEL: dict[int, LogLevel] = {0: "warning", 1: "info", 2: "debug", 3: "trace"}

# Decided by runserver's arguments (or meaningless for a development server).
_NOT_FROM_ENV = frozenset({"app", "factory", "app_dir", "host", "port", "uds", "fd", "workers"})

_BIND_ERRORS = {
    errno.EACCES: "You don't have permission to access that port.",
    errno.EADDRINUSE: "That port is already in use.",
    errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
}


class Command(RunserverCommand):
    help = "Starts a development server for HTTP and WebSocket (ASGI) using channels-server."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noasgi",
            action="store_false",
            dest="use_asgi",
            help="Run the old WSGI-based runserver rather than the ASGI-based one.",
        )
        parser.add_argument(
            "--http_timeout",
            action="store",
            dest="http_timeout",
            type=float,
            default=None,
            help="Accepted for Daphne compatibility; the server's own timeouts apply.",
        )
        parser.add_argument(
            "--websocket_handshake_timeout",
            action="store",
            dest="websocket_handshake_timeout",
            type=float,
            default=5.0,
            help="Seconds a client has to complete the WebSocket handshake.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.http_timeout = options.get("http_timeout")
        self.websocket_handshake_timeout = options.get("websocket_handshake_timeout", 5.0)
        super().handle(*args, **options)

    def inner_run(self, *args: Any, **options: Any) -> None:
        if not options.get("use_asgi", True) or not getattr(settings, "ASGI_APPLICATION", None):
            # No ASGI app configured: Django's WSGI development server, unchanged.
            super().inner_run(*args, **options)
            return
        # An exception silenced by ManagementUtility.execute for the reloader is raised now.
        autoreload.raise_last_exception()
        shutdown_message = options.get("shutdown_message", "")
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()

        from server.cli import options_from_env
        from server.config import Config, ConfigError
        from server.logging_setup import configure_logging
        from server.runtime import Server, StartupError, loop_factory

        try:
            application = self.get_application(options)
            # CHANNELS_SERVER_* environment variables tune the server as for ``python -m
            # server``; where to listen comes from runserver's own arguments.
            env_options = {
                k: v for k, v in options_from_env(os.environ).items() if k not in _NOT_FROM_ENV
            }
            config_options: dict[str, Any] = {
                "log_level": _VERBOSITY_LOG_LEVEL.get(int(options.get("verbosity", 1)), "info"),
                "ws_connect_timeout": float(self.websocket_handshake_timeout or 5.0),
                "timeout_graceful_shutdown": 3.0,
                **env_options,
            }
            config = Config(
                app=application,
                host=getattr(self, "addr", "127.0.0.1"),
                port=int(getattr(self, "port", 8000)),
                **config_options,
            )
        except ConfigError as exc:
            self.stderr.write(f"Error: {exc}")
            os._exit(1)  # sys.exit does not work from the reloader's thread
        # Request lines and server errors on the console, as with Django's own runserver.
        configure_logging(config)
        server = Server(config, application)

        async def serve() -> None:
            serving = asyncio.ensure_future(server.serve())
            started = asyncio.ensure_future(server.started.wait())
            await asyncio.wait({serving, started}, return_when=asyncio.FIRST_COMPLETED)
            if started.done():
                self.announce(server.bound_addresses[0][1])
            else:
                started.cancel()
            await serving

        try:
            with asyncio.Runner(loop_factory=loop_factory(config.loop)) as runner:
                runner.run(serve())
        except StartupError as exc:
            self.stderr.write(f"Error: {exc}")
            os._exit(1)
        except OSError as exc:
            self.stderr.write(f"Error: {_BIND_ERRORS.get(exc.errno or 0, str(exc))}")
            os._exit(1)
        except KeyboardInterrupt:
            pass
        if shutdown_message:
            self.stdout.write(shutdown_message)
        sys.exit(0)

    def announce(self, port: int) -> None:
        """The banner once listening.  Our own rather than Django's ``on_bind``, which is not
        in every Django version we support and, from Django 6.0, calls the server "WSGI"."""
        addr = str(getattr(self, "addr", "127.0.0.1"))
        if getattr(self, "_raw_ipv6", False):
            addr = f"[{addr}]"
        elif addr == "0":
            addr = "0.0.0.0"
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{datetime.now().strftime('%B %d, %Y - %X')}\n"
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI/WebSocket development server at "
            f"{getattr(self, 'protocol', 'http')}://{addr}:{port}/\n"
            f"Quit the server with {quit_command}."
        )
        if os.environ.get("DJANGO_RUNSERVER_HIDE_WARNING") != "true":
            self.stdout.write(
                self.style.WARNING(
                    "WARNING: runserver is for development only; serve production traffic "
                    "with `python -m server <module>:<application>`."
                )
            )

    def get_application(self, options: dict[str, Any]) -> Any:
        """The project's ASGI app, serving static files in DEBUG like Django's runserver."""
        from ...routing import get_default_application

        application = get_default_application()
        use_static = options.get("use_static_handler", False)
        insecure = options.get("insecure_serving", False)
        if (
            apps.is_installed("django.contrib.staticfiles")
            and use_static
            and (settings.DEBUG or insecure)
        ):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            return ASGIStaticFilesHandler(application)
        return application
