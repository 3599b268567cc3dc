"""Micro-benchmark: the cost of ``--metrics-port`` on the hot path (no sockets).

The same request and WebSocket shapes as ``http_cycle`` and ``ws_echo``, run with metrics off
and on, interleaved (off, on, off, on, ...) so that a noisy neighbour slows both alike.  "On"
is what ``server.runtime`` sets up: a config with ``--metrics-port`` and the
``MetricsService``, whose recorder the protocols add to (per-request counters and timing,
bytes, per-message counters).  The exposition itself is not on the hot path (it runs when
scraped) and is not timed.  Instruction counts, steadier: ``http_instructions`` and
``ws_instructions`` with ``--metrics``.

Run: ``python -m benchmarks.micro.metrics_overhead [N] [ROUNDS]`` -> best µs per operation for
each mode and the relative difference.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from benchmarks.micro.http_cycle import REQUEST, Sink, hello, spin
from benchmarks.micro.ws_echo import FRAME, SCOPE_HEADERS, TEXT, echo
from server.config import Config
from server.metrics import recorder
from server.metrics.service import MetricsService
from server.protocols.http import HttpProtocol
from server.protocols.websocket import WebSocketProtocol
from server.state import ServerState


def _setup(metrics: bool) -> tuple[Config, ServerState]:
    config = Config(access_log=False, metrics_port=0 if metrics else None)
    state = ServerState()
    if metrics:
        MetricsService(config, state)  # activates its recorder
    return config, state


async def http_sequential(n: int, metrics: bool) -> float:
    loop = asyncio.get_running_loop()
    config, state = _setup(metrics)
    try:
        proto = HttpProtocol(config, hello, state, loop)
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
            assert recorder.active is not None
            assert sum(recorder.active.requests_by_class().values()) == n
        return elapsed / n * 1e6
    finally:
        recorder.active = None


async def ws_roundtrip(n: int, metrics: bool) -> float:
    loop = asyncio.get_running_loop()
    config, state = _setup(metrics)
    try:
        ws = WebSocketProtocol(config, echo, state, loop)
        sink = Sink()
        feed = ws.data_received
        scope: Any = {"type": "websocket", "headers": SCOPE_HEADERS, "path": "/"}
        ws.start_upgrade(sink, scope, b"")
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
    benches: tuple[tuple[str, Callable[[int, bool], Coroutine[Any, Any, float]]], ...] = (
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
