"""The request limits every HTTP/1.1 parser path enforces (``--limit-request-*``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    line: int = 8190  # request-line length, CRLF included (414 beyond)
    headers: int = 100  # number of header fields (431 beyond)
    size: int = 65536  # header block size, as sum of "name: value\r\n" (431 beyond)
    body: int | None = None  # request body bytes (413 beyond); None: unlimited

    @property
    def max_head(self) -> int:
        """The most bytes an incomplete head may take before it is refused."""
        return self.line + self.size + 4

    @property
    def hold(self) -> int:
        """Up to this many bytes an incomplete head is held whole for the strict parser;
        beyond it h11 reads it, so that the limits are checked while it still arrives."""
        return min(self.line + 2, self.size)
