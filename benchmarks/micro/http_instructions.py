"""Instruction counts for the HTTP/1.1 hot path, steady under a loaded machine.

Wall-clock micro-benchmarks swing by 2x when other work shares the cores; the number of
instructions a request costs does not.  Run under callgrind, once with ``N`` requests and once
with none; the difference divided by ``N`` is the cost of one request:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/micro/http_instructions.py CASE N

CASE: ``varied`` (keep-alive, a distinct ~700-byte browser head per request), ``varied64``
(the same heads over 64 keep-alive connections whose requests are in flight together, as
``wrk -c64`` drives a server: objects of many requests are alive at once, which is what makes
the cyclic garbage collector run), ``repeated`` (the same small head again and again) or
``close`` (a new connection per HTTP/1.0 request).  Run as
a file, the script imports whichever ``server`` package comes first on ``sys.path``, so
``PYTHONPATH=<other checkout>`` measures another version with the same requests.
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

CLOSE = b"GET / HTTP/1.0\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


async def run(case: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    config = Config(access_log=False)
    state = ServerState()
    heads = [browser_head(i) for i in range(n)] if case.startswith("varied") else []
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
    if case == "varied64":
        conns = []
        for _ in range(64):
            proto = HttpProtocol(config, hello, state, loop)
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

    from server.gc_threshold import adopt_313_threshold

    case, n = sys.argv[1], int(sys.argv[2])
    adopt_313_threshold()  # as the server does at start-up
    uvloop.run(run(case, n))


if __name__ == "__main__":
    main()
