"""Micro-benchmark: keep-alive request cycles through ``HttpProtocol`` (no sockets).

A sink transport stands in for the socket; a trivial hello-world app answers.  Two shapes:

* ``sequential``: one GET fed, the loop run until its response is written, repeated (what a
  keep-alive client like ``wrk`` does per connection);
* ``distinct heads``: as ``sequential``, but consecutive heads differ, so h11 parses every
  one (the parser's repeated-head cache never hits);
* ``varied heads``: browser-like heads (13 fields, ~700 bytes) whose path, query, cookies and
  referer differ on every request, as real traffic does (workload A-varied);
* ``pipelined``: N GETs fed in one ``data_received`` call;
* ``connection per request``: a new ``HttpProtocol`` per request, HTTP/1.0 without keep-alive
  (what nginx sends upstream by default), set-up and tear-down included (workload A-close).

Run: ``python -m benchmarks.micro.http_cycle [N]`` -> µs per request (best of 5 runs).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from typing import Any

from server.config import Config
from server.protocols.http import HttpProtocol
from server.state import ServerState

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
BODY = b"Hello, world!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
RESPONSE_BODY = {"type": "http.response.body", "body": BODY}


def browser_head(i: int) -> bytes:
    """A Chrome-like GET of ~700 bytes / 13 fields; path, query, cookies, referer vary with i."""
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
    await send(RESPONSE_BODY)


class Sink(asyncio.Transport):
    """Counts writes; everything else a protocol may call is a no-op."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.last = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        self.count += 1
        self.last = data

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

    def is_reading(self) -> bool:
        return True

    def can_write_eof(self) -> bool:
        return False


async def spin(sink: Sink, count: int) -> None:
    """Run the loop until ``count`` writes happened.  Deliberately a bare loop turn, like a
    socket read would be: an Event or future here would add its own cost to what we time."""
    while sink.count < count:  # noqa: ASYNC110 - see docstring
        await asyncio.sleep(0)


def _protocol(loop: asyncio.AbstractEventLoop) -> tuple[HttpProtocol, Sink]:
    config = Config(access_log=False)
    proto = HttpProtocol(config, hello, ServerState(), loop)
    sink = Sink()
    proto.connection_made(sink)
    return proto, sink


async def sequential(n: int) -> float:
    loop = asyncio.get_running_loop()
    proto, sink = _protocol(loop)
    feed = proto.data_received
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        feed(REQUEST)
        await spin(sink, i)
    elapsed = time.perf_counter() - t0
    assert sink.last.startswith(b"HTTP/1.1 200 OK\r\n"), sink.last
    return elapsed / n * 1e6


async def sequential_distinct(n: int) -> float:
    """Like ``sequential`` but every head differs from the one before (h11 parses each)."""
    loop = asyncio.get_running_loop()
    proto, sink = _protocol(loop)
    feed = proto.data_received
    requests = [REQUEST, REQUEST.replace(b"GET / ", b"GET /x ")]
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        feed(requests[i & 1])
        await spin(sink, i)
    elapsed = time.perf_counter() - t0
    assert sink.last.startswith(b"HTTP/1.1 200 OK\r\n"), sink.last
    return elapsed / n * 1e6


async def varied(n: int) -> float:
    """Keep-alive, every head distinct (browser-like; see ``browser_head``)."""
    loop = asyncio.get_running_loop()
    proto, sink = _protocol(loop)
    feed = proto.data_received
    requests = [browser_head(i) for i in range(n)]
    t0 = time.perf_counter()
    for i in range(n):
        feed(requests[i])
        await spin(sink, i + 1)
    elapsed = time.perf_counter() - t0
    assert sink.last.startswith(b"HTTP/1.1 200 OK\r\n"), sink.last
    return elapsed / n * 1e6


CLOSE_REQUEST = b"GET / HTTP/1.0\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


async def connection_per_request(n: int) -> float:
    """A new protocol per request: connection_made, one HTTP/1.0 request, close, lost."""
    loop = asyncio.get_running_loop()
    config = Config(access_log=False)
    state = ServerState()
    t0 = time.perf_counter()
    for _ in range(n):
        proto = HttpProtocol(config, hello, state, loop)
        sink = Sink()
        proto.connection_made(sink)
        proto.data_received(CLOSE_REQUEST)
        await spin(sink, 1)
        proto.connection_lost(None)
    elapsed = time.perf_counter() - t0
    assert b"connection: close" in sink.last, sink.last
    return elapsed / n * 1e6


async def pipelined(n: int, batch: int = 16) -> float:
    loop = asyncio.get_running_loop()
    proto, sink = _protocol(loop)
    data = REQUEST * batch
    t0 = time.perf_counter()
    for i in range(1, n // batch + 1):
        proto.data_received(data)
        await spin(sink, i * batch)
    elapsed = time.perf_counter() - t0
    return elapsed / (n // batch * batch) * 1e6


def main() -> None:
    import uvloop

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    benches = (
        ("sequential", sequential),
        ("distinct heads", sequential_distinct),
        ("varied heads", varied),
        ("pipelined x16", pipelined),
        ("conn/request", connection_per_request),
    )
    for name, bench in benches:
        best = min(uvloop.run(bench(n)) for _ in range(5))
        print(f"http {name:14s} {best:7.2f} us/request")


if __name__ == "__main__":
    main()
