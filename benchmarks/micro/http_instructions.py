"""Instruction counts for the HTTP/1.1 hot path, steady under a loaded machine.

Wall-clock micro-benchmarks swing by 2x when other work shares the cores; the number of
instructions a request costs does not.  Run under callgrind, once with ``N`` requests and once
with none; the difference divided by ``N`` is the cost of one request:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/micro/http_instructions.py CASE N [--metrics[-path]]

CASE: ``varied`` (keep-alive, a distinct ~700-byte browser head per request), ``varied64``
(the same heads over 64 keep-alive connections whose requests are in flight together, as
``wrk -c64`` drives a server: objects of many requests are alive at once, which is what makes
the cyclic garbage collector run), ``repeated`` (the same small head again and again) or
``close`` (a new connection per HTTP/1.0 request).  Run as
a file, the script imports whichever ``server`` package comes first on ``sys.path``, so
``PYTHONPATH=<other checkout>`` measures another version with the same requests.

``--metrics``: as with ``--metrics-port``: the config says so and the server's
``MetricsService`` is created, which activates the recorder the protocols record into (the
exposition, run only when scraped, is not measured).  ``--metrics-path``: the same with
``--metrics-path /metrics`` instead, whose path check wraps the app as the runtime does.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# Run as a file, ``sys.path[0]`` is this folder: append the checkout root (after PYTHONPATH, so
# the ``server`` package it names still wins) to share the request shapes with http_cycle.
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.micro.http_cycle import REQUEST as REPEATED
from benchmarks.micro.http_cycle import Sink, browser_head, hello
from server.config import Config
from server.protocols.http import HttpProtocol
from server.state import ServerState
from server.types import ASGIApp

CLOSE = b"GET / HTTP/1.0\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


def check_recorded(n: int) -> None:
    """With ``--metrics``, every request was counted (the path measured is the metered one)."""
    from server.metrics import recorder

    assert recorder.active is not None and sum(recorder.active.requests_by_class().values()) == n
    assert n == 0 or recorder.active.protocols["http"].bytes_out > 0


async def run(case: str, n: int, metrics: str | None) -> None:
    """``metrics``: None (off), ``"port"`` or ``"path"`` (as the server options)."""
    loop = asyncio.get_running_loop()
    config = Config(
        access_log=False,
        metrics_port=0 if metrics == "port" else None,
        metrics_path="/metrics" if metrics == "path" else None,
    )
    state = ServerState()
    app: ASGIApp = hello
    if metrics:
        from server.metrics.service import MetricsService

        app = MetricsService(config, state).wrap_app(app)
    heads = [browser_head(i) for i in range(n)] if case.startswith("varied") else []
    if case == "close":
        for _ in range(n):
            proto = HttpProtocol(config, app, state, loop)
            sink = Sink()
            proto.connection_made(sink)
            proto.data_received(CLOSE)
            while sink.count < 1:  # noqa: ASYNC110 - a bare loop turn, as a socket read
                await asyncio.sleep(0)
            proto.connection_lost(None)
    elif case == "varied64":
        conns = []
        for _ in range(64):
            proto = HttpProtocol(config, app, state, loop)
            sink = Sink()
            proto.connection_made(sink)
            conns.append((proto, sink))
        done = 0
        while done < n:
            batch = conns[: n - done]
            for j, (proto, _sink) in enumerate(batch):
                proto.data_received(heads[done + j])
            done += len(batch)
            # Connection j has been fed ceil((done - j) / 64) requests: wait for all answers.
            while any(s.count < (done - j + 63) // 64 for j, (_p, s) in enumerate(conns)):  # noqa: ASYNC110
                await asyncio.sleep(0)
    else:
        proto = HttpProtocol(config, app, state, loop)
        sink = Sink()
        proto.connection_made(sink)
        for i in range(n):
            proto.data_received(heads[i] if heads else REPEATED)
            while sink.count < i + 1:  # noqa: ASYNC110
                await asyncio.sleep(0)
    if metrics:
        check_recorded(n)


def main() -> None:
    import uvloop

    from server.gc_threshold import adopt_313_threshold

    case, n = sys.argv[1], int(sys.argv[2])
    flags = sys.argv[3:]
    metrics = "path" if "--metrics-path" in flags else "port" if "--metrics" in flags else None
    adopt_313_threshold()  # as the server does at start-up
    uvloop.run(run(case, n, metrics))


if __name__ == "__main__":
    main()
