"""One access log line per response, on logger ``server.access``.

Whether to log is decided once per connection (``AccessLog.enabled``), so the hot path pays a
single attribute test when access logging is off or filtered out by level.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("server.access")


class AccessLog:
    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and logger.isEnabledFor(logging.INFO)

    def log(
        self,
        client: tuple[str, int] | None,
        method: str,
        target: str,
        http_version: str,
        status: int,
    ) -> None:
        peer = "-" if client is None else f"{client[0]}:{client[1]}"
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            peer,
            method,
            target,
            http_version,
            status,
            extra={"status_code": status, "client_addr": peer},
        )
