"""Logging for the server process: ``server.*`` errors to stderr, ``server.access`` to stdout.

Two logger trees matter:

* ``server`` (and every child such as ``server.error`` or ``server.protocols.http``): operational
  messages, written to stderr with time, process id and level.
* ``server.access``: one line per request (formatted by ``server.access_log``), written to stdout
  or to ``--access-log-file``; it does not propagate, so access lines never end up on stderr.

``--log-level trace`` maps to :data:`TRACE` (below DEBUG); protocol modules guard their trace
calls with ``logger.isEnabledFor(TRACE)`` computed once, so the level costs nothing when off.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from server.config import Config

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

ERROR_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
ACCESS_FORMAT = "%(asctime)s [%(process)d] %(message)s"

# Handlers we installed, so that configuring twice (tests, workers) replaces instead of stacking.
_installed: list[tuple[logging.Logger, logging.Handler]] = []


def _stream_handler(stream: TextIO, fmt: str) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    return handler


def configure_logging(config: Config) -> None:
    """Install handlers and levels for ``config``; idempotent."""
    for logger, handler in _installed:
        logger.removeHandler(handler)
        handler.close()  # flushes; a StreamHandler leaves its stream open
    _installed.clear()

    level = LEVELS[config.log_level]
    root = logging.getLogger("server")
    root.setLevel(level)
    err_handler = _stream_handler(sys.stderr, ERROR_FORMAT)
    root.addHandler(err_handler)
    root.propagate = False
    _installed.append((root, err_handler))

    access = logging.getLogger("server.access")
    access.propagate = False
    access_handler: logging.Handler
    if config.access_log_file and config.access_log_file != "-":
        access_handler = logging.FileHandler(config.access_log_file, encoding="utf-8")
        access_handler.setFormatter(logging.Formatter(ACCESS_FORMAT))
    else:
        access_handler = _stream_handler(sys.stdout, ACCESS_FORMAT)
    access.addHandler(access_handler)
    _installed.append((access, access_handler))
    # Access lines are INFO; below that level (or with --no-access-log) they are switched off at
    # the logger so that ``isEnabledFor`` is a cheap False on the hot path.
    access.setLevel(
        logging.INFO if config.access_log and level <= logging.INFO else logging.CRITICAL
    )
    access.disabled = not config.access_log
