"""Micro-benchmark: ``ResponseState.start`` + ``body`` for a small response (no I/O).

Run: ``python -m benchmarks.micro.response`` -> µs per response (best of 7, 50 000 each), for
the 2 headers of the hello-world app and for 6 headers typical of a Django response.
"""

from __future__ import annotations

import functools
import timeit

from server.datecache import date_line
from server.sansio.response import ResponseState

HELLO = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
DJANGO_LIKE = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"x-frame-options", b"DENY"),
        (b"content-length", b"13"),
        (b"vary", b"Cookie"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ],
}
DEFAULTS = date_line() + b"server: channels-server\r\n"


def respond(start: dict[str, object]) -> None:
    response = ResponseState()
    response.start(start, DEFAULTS)
    response.body(b"Hello, world!", False)


def main() -> None:
    n = 50000
    for name, start in (("2 headers", HELLO), ("6 headers", DJANGO_LIKE)):
        best = min(timeit.repeat(functools.partial(respond, start), number=n, repeat=7)) / n * 1e6
        print(f"response {name:10s} {best:6.2f} us/response")


if __name__ == "__main__":
    main()
