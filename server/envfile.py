"""``--env-file``: read ``KEY=value`` lines with python-dotenv (``channels-server[dotenv]``).

Only reading is done here; :func:`server.cli.build_config` decides precedence (variables that
are already set win) and puts the values into ``os.environ`` for the application.
"""

from __future__ import annotations

import os

from server.config import ConfigError


def load_env_file(path: str) -> dict[str, str]:
    """The variables ``path`` defines (valueless keys skipped); ConfigError when unreadable."""
    try:
        from dotenv import dotenv_values
    except ImportError:
        raise ConfigError(
            "--env-file needs python-dotenv (pip install 'channels-server[dotenv]')"
        ) from None
    if not os.path.isfile(path):
        raise ConfigError(f"--env-file {path}: no such file")
    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--env-file {path}: {exc}") from None
    return {key: value for key, value in values.items() if value is not None}
