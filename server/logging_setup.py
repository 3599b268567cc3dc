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

import configparser
import json
import logging
import logging.config
import os
import sys
from typing import Any, TextIO

from server import access_log
from server.config import Config, ConfigError

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
# --access-log-format json: the message is the whole line (it holds its own time).
ACCESS_JSON_FORMAT = "%(message)s"

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
    access_log.json_format = config.access_log_format == "json"
    access_format = ACCESS_JSON_FORMAT if access_log.json_format else ACCESS_FORMAT
    if config.access_log_file and config.access_log_file != "-":
        access_handler = logging.FileHandler(config.access_log_file, encoding="utf-8")
        access_handler.setFormatter(logging.Formatter(access_format))
    else:
        access_handler = _stream_handler(sys.stdout, access_format)
    access.addHandler(access_handler)
    _installed.append((access, access_handler))
    # Access lines are INFO; below that level (or with --no-access-log) they are switched off at
    # the logger so that ``isEnabledFor`` is a cheap False on the hot path.
    access.setLevel(
        logging.INFO if config.access_log and level <= logging.INFO else logging.CRITICAL
    )
    access.disabled = not config.access_log
    if config.log_config is not None:
        apply_log_config(config.log_config)


def apply_log_config(path: str) -> None:
    """``--log-config``: applied over our setup, so it may replace any handler or level.

    ``.json`` and ``.yaml``/``.yml`` files hold a ``logging.config.dictConfig`` dictionary
    (YAML needs PyYAML); anything else is read by ``logging.config.fileConfig`` (ini syntax).
    Existing loggers stay enabled unless the file says ``disable_existing_loggers``.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"--log-config {path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".json", ".yaml", ".yml"):
            data = _load_dict(path, ext)
            if not isinstance(data, dict):
                raise ConfigError(f"--log-config {path}: expected a mapping at the top level")
            data.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(data)
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except ConfigError:
        raise
    except (ValueError, TypeError, AttributeError, ImportError, KeyError) as exc:
        raise ConfigError(f"--log-config {path}: {_first_line(exc)}") from None
    except configparser.Error as exc:
        raise ConfigError(f"--log-config {path}: {_first_line(exc)}") from None
    except RuntimeError as exc:  # fileConfig wraps configparser problems in RuntimeError
        raise ConfigError(f"--log-config {path}: {_first_line(exc)}") from None


def _load_dict(path: str, ext: str) -> Any:
    with open(path, encoding="utf-8") as file:
        if ext == ".json":
            return json.load(file)  # JSONDecodeError is a ValueError
        try:
            import yaml
        except ImportError:
            raise ConfigError(
                f"--log-config {path}: YAML files need PyYAML (pip install pyyaml)"
            ) from None
        try:
            return yaml.safe_load(file)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--log-config {path}: invalid YAML ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
