"""Micro-benchmark: keep-alive request cycles through ``HttpProtocol`` (no sockets).

A sink transport stands in for the socket; a trivial hello-world app answers.  Two shapes:

* ``sequential``: one GET fed, the loop run until its response is written, repeated (what a
  keep-alive client like ``wrk`` does per connection);
* ``distinct heads``: as ``sequential``, but consecutive heads differ, so h11 parses every
  one (the parser's repeated-head cache never hits);
* ``pipelined``: N GETs fed in one ``data_received`` call.

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
        ("pipelined x16", pipelined),
    )
    for name, bench in benches:
        best = min(uvloop.run(bench(n)) for _ in range(5))
        print(f"http {name:14s} {best:7.2f} us/request")


if __name__ == "__main__":
    main()
