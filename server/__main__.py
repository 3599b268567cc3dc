"""``python -m server myproject.asgi:application``."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    try:
        from server.cli import main

        code = main()
    except KeyboardInterrupt:
        # Ctrl+C before the server (or supervisor) had its own handlers, e.g. while Django
        # settings were being read: stop without a traceback, like a forced exit.
        code = 1
    sys.exit(code)
