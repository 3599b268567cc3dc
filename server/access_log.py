"""Per-connection access log (logger ``server.access``).

Whether to do anything is decided once per connection (``AccessLog.enabled``: access logging
on and not filtered out by level), so the hot path pays a single attribute test when it is
off.  (Request metrics are not recorded here: the protocols add to ``server.metrics.recorder``
directly.)

Two formats (``--access-log-format``):

* ``text``: ``client - "METHOD target HTTP/version" status`` per response;
* ``json``: one JSON object per HTTP request, and one per WebSocket session written when the
  session ends (with its close code and duration).  A refused handshake is a request.
"""

from __future__ import annotations

import json
import logging
import time

logger = logging.getLogger("server.access")

_perf_counter = time.perf_counter

# Set by server.logging_setup.configure_logging (``--access-log-format json``).
json_format = False


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class AccessLog:
    __slots__ = (
        "_accepted",
        "_json",
        "_log",
        "_session",
        "_start",
        "enabled",
        "timed",
    )

    def __init__(self, enabled: bool) -> None:
        self._log = enabled and logger.isEnabledFor(logging.INFO)
        self._json = json_format
        self.enabled = self._log
        # Whether request durations are wanted (the text format has none).
        self.timed = self._log and self._json
        self._start = 0.0
        self._accepted = False
        # An accepted WebSocket session waiting for its close: the handshake's fields.
        self._session: dict[str, object] | None = None

    def start(self) -> None:
        """A request head was parsed: its duration counts from here."""
        self._start = _perf_counter()

    def log(
        self,
        client: tuple[str, int] | None,
        method: str | bytes,
        target: str | bytes,
        http_version: str | bytes,
        status: int,
    ) -> None:
        """One response.  The request line parts may be the raw bytes from the parser: they
        are only decoded when a line is written (the text format needs no duration)."""
        if not self._log:
            return
        start = self._start
        duration = None
        if start:
            duration = _perf_counter() - start
            self._start = 0.0
        if status == 101:
            self._accepted = True
            self._start = _perf_counter()  # the session's duration counts from its acceptance
        if type(method) is bytes:
            method = method.decode("ascii", "replace")
        if type(target) is bytes:
            target = target.decode("latin-1")
        if type(http_version) is bytes:
            http_version = http_version.decode("ascii", "replace")
        peer = "-" if client is None else f"{client[0]}:{client[1]}"
        if not self._json:
            logger.info(
                '%s - "%s %s HTTP/%s" %d',
                peer,
                method,
                target,
                http_version,
                status,
                extra={"status_code": status, "client_addr": peer},
            )
            return
        record: dict[str, object] = {
            "time": _now_iso(),
            "type": "http",
            "client": peer,
            "method": method,
            "path": target,
            "http_version": http_version,
            "status": status,
        }
        if duration is not None:
            record["duration_ms"] = round(duration * 1000, 3)
        if status == 101:
            # WebSocket accepted: one object for the whole session, written at its end.
            record["type"] = "websocket"
            self._session = record
            return
        self._write(record, status, peer)

    def websocket_closed(self, code: int) -> None:
        """An accepted WebSocket session ended with ``code`` (1006: no Close frame)."""
        if not self._accepted:
            return  # a refused handshake is not a session
        self._accepted = False
        session, self._session = self._session, None
        if session is None:
            return
        session["close_code"] = code
        if self._start:
            session["duration_ms"] = round((time.perf_counter() - self._start) * 1000, 3)
        self._write(session, 101, str(session["client"]))

    def _write(self, record: dict[str, object], status: int, peer: str) -> None:
        logger.info(
            json.dumps(record, separators=(",", ":")),
            extra={"status_code": status, "client_addr": peer},
        )
