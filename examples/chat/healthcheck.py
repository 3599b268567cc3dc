"""Container health probe: exit 0 if the server answers its health endpoint with 200.

Used by the Dockerfile's HEALTHCHECK (the slim image has no curl).  It reads the same
environment variables as the server, so it follows CHANNELS_SERVER_PORT and
CHANNELS_SERVER_HEALTH_CHECK_PATH when those are changed at ``docker run`` time.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("CHANNELS_SERVER_PORT", "8000")
    path = os.environ.get("CHANNELS_SERVER_HEALTH_CHECK_PATH") or "/healthz"
    # The probe runs inside the container, so loopback reaches the server whatever address it
    # is bound to (0.0.0.0 listens on loopback too).
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(
            url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "3"))
        ) as response:
            status = response.status
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"health check {url} failed: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"health check {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
