"""Instruction counts for the HTTP/1.1 hot path, steady under a loaded machine.

Wall-clock micro-benchmarks swing by 2x when other work shares the cores; the number of
instructions a request costs does not.  Run under callgrind, once with ``N`` requests and once
with none; the difference divided by ``N`` is the cost of one request:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/micro/http_instructions.py CASE N

CASE: ``varied`` (keep-alive, a distinct ~700-byte browser head per request), ``repeated`` (the
same small head again and again) or ``close`` (a new connection per HTTP/1.0 request).  Run as
a file, the script imports whichever ``server`` package comes first on ``sys.path``, so
``PYTHONPATH=<other checkout>`` measures another version with the same requests.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

from server.config import Config
from server.protocols.http import HttpProtocol
from server.state import ServerState

REPEATED = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
CLOSE = b"GET / HTTP/1.0\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
BODY = {"type": "http.response.body", "body": b"Hello, world!"}


def browser_head(i: int) -> bytes:
    """The same shape as benchmarks/micro/http_cycle.py and the A-varied Lua script."""
    return (
        b"GET /articles/%d/comments?page=%d&sort=new&q=term%d HTTP/1.1\r\n"
        b"Host: www.example.com\r\n"
        b"Connection: keep-alive\r\n"
        b'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
        b"sec-ch-ua-mobile: ?0\r\n"
        b'sec-ch-ua-platform: "Linux"\r\n'
        b"Upgrade-Insecure-Requests: 1\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/124.0.0.0 Safari/537.36\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
        b"image/webp,*/*;q=0.8\r\n"
        b"Sec-Fetch-Site: same-origin\r\n"
        b"Referer: https://www.example.com/articles/%d?from=%d\r\n"
        b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
        b"Cookie: sessionid=%032x; csrftoken=%032x; _ga=GA1.1.%d.%d\r\n"
        b"\r\n"
    ) % (i, i % 7, i, i - 1, i % 13, i * 7919, i * 104729, i, i * 31)


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send(START)
    await send(BODY)


class Sink(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        self.count += 1

    def writelines(self, list_of_data: Iterable[Any]) -> None:
        self.count += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


async def run(case: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    config = Config(access_log=False)
    state = ServerState()
    heads = [browser_head(i) for i in range(n)] if case == "varied" else []
    if case == "close":
        for _ in range(n):
            proto = HttpProtocol(config, hello, state, loop)
            sink = Sink()
            proto.connection_made(sink)
            proto.data_received(CLOSE)
            while sink.count < 1:  # noqa: ASYNC110 - a bare loop turn, as a socket read
                await asyncio.sleep(0)
            proto.connection_lost(None)
        return
    proto = HttpProtocol(config, hello, state, loop)
    sink = Sink()
    proto.connection_made(sink)
    for i in range(n):
        proto.data_received(heads[i] if heads else REPEATED)
        while sink.count < i + 1:  # noqa: ASYNC110
            await asyncio.sleep(0)


def main() -> None:
    import uvloop

    case, n = sys.argv[1], int(sys.argv[2])
    uvloop.run(run(case, n))


if __name__ == "__main__":
    main()
