"""Exit codes and the one-line fatal error every entry point reports.

0 clean stop, 1 runtime failure (port in use, app raised on import, forced exit, lifespan
shutdown failed), 2 usage/configuration error, 3 application startup failed (lifespan).
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_STARTUP_FAILED = 3


class StartupError(Exception):
    """The server could not start; ``str()`` is the one line shown to the user."""

    def __init__(self, message: str, exit_code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def report_error(message: str) -> None:
    """The one line a user sees for a fatal error (no traceback)."""
    print(f"channels-server: error: {message}", file=sys.stderr, flush=True)
