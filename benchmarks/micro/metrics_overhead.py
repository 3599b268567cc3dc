"""Micro-benchmark: the cost of ``--metrics-port`` on the hot path (no sockets).

The same request and WebSocket shapes as ``http_cycle`` and ``ws_echo``, run with metrics off
and on, interleaved (off, on, off, on, ...) so that a noisy neighbour slows both alike.  "On"
is what ``server.runtime`` sets up: an active recorder (per-request counters and timing, per-
message counters) and the ``Tap``/``MeteredTransport`` pair around each connection (bytes).
The exposition itself is not on the hot path (it runs when scraped) and is not timed.

Run: ``python -m benchmarks.micro.metrics_overhead [N] [ROUNDS]`` -> best µs per operation for
each mode and the relative difference.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.micro.http_cycle import REQUEST, Sink, hello, spin
from benchmarks.micro.ws_echo import FRAME, SCOPE_HEADERS, TEXT, echo
from server.config import Config
from server.metrics import recorder
from server.metrics.recorder import Recorder
from server.metrics.tap import MeteredTransport, Tap
from server.protocols.http import HttpProtocol
from server.protocols.websocket import WebSocketProtocol
from server.state import ServerState


async def http_sequential(n: int, metrics: bool) -> float:
    loop = asyncio.get_running_loop()
    recorder.active = Recorder() if metrics else None
    try:
        proto: asyncio.Protocol = HttpProtocol(Config(access_log=False), hello, ServerState(), loop)
        if recorder.active is not None:
            proto = Tap(proto, recorder.active)
        sink = Sink()
        proto.connection_made(sink)
        feed = proto.data_received
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            feed(REQUEST)
            await spin(sink, i)
        elapsed = time.perf_counter() - t0
        assert sink.last.startswith(b"HTTP/1.1 200 OK\r\n"), sink.last
        if metrics:
            assert recorder.active is not None and sum(recorder.active.requests) == n
        return elapsed / n * 1e6
    finally:
        recorder.active = None


async def ws_roundtrip(n: int, metrics: bool) -> float:
    loop = asyncio.get_running_loop()
    recorder.active = Recorder() if metrics else None
    try:
        ws = WebSocketProtocol(Config(access_log=False), echo, ServerState(), loop)
        sink = Sink()
        transport: Any = sink
        feed: Callable[[bytes], None] = ws.data_received
        if recorder.active is not None:
            tap = Tap(ws, recorder.active)
            transport = MeteredTransport(sink, tap)
            feed = tap.data_received
        scope = {"type": "websocket", "headers": SCOPE_HEADERS, "path": "/"}
        ws.start_upgrade(transport, scope, b"")
        await spin(sink, 1)
        t0 = time.perf_counter()
        for i in range(2, n + 2):
            feed(FRAME)
            await spin(sink, i)
        elapsed = time.perf_counter() - t0
        assert sink.last == b"\x81\x40" + TEXT.encode(), sink.last
        if metrics:
            assert recorder.active is not None and recorder.active.ws_messages_in == n
        assert ws.task is not None
        ws.task.cancel()
        return elapsed / n * 1e6
    finally:
        recorder.active = None


def main() -> None:
    import uvloop

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    benches: tuple[tuple[str, Callable[[int, bool], Awaitable[float]]], ...] = (
        ("http sequential", http_sequential),
        ("ws echo round trip", ws_roundtrip),
    )
    for name, bench in benches:
        best = {False: float("inf"), True: float("inf")}
        for _ in range(rounds):
            for metrics in (False, True):
                best[metrics] = min(best[metrics], uvloop.run(bench(n, metrics)))
        off, on = best[False], best[True]
        print(
            f"{name:20s} metrics off {off:7.2f} us   on {on:7.2f} us   "
            f"({(on - off) / off * 100:+.1f}%, {(on - off) * 1000:+.0f} ns/op)"
        )


if __name__ == "__main__":
    main()
