"""Micro-benchmark: HTTP/2 request streams through ``H2Protocol`` (no sockets).

The workload H2 shape: batches of ``STREAMS`` GETs (HEADERS with END_STREAM, HPACK-indexed
after the first, as h2load sends them) fed in one ``data_received``, the loop run until every
response is written.  A sink transport stands in for the socket; the hello app answers.

Run: ``python -m benchmarks.micro.h2_cycle [N]`` -> µs per request (best of 5 runs).

Instructions per request, steady whatever else the machine runs (as http_instructions.py):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/micro/h2_cycle.py N once

with ``N`` requests and with 0; the difference divided by ``N``.  Run as a file, it imports the
``server`` package first on ``sys.path``: ``PYTHONPATH=<other checkout>`` measures that one.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import time
from pathlib import Path

from hpack import Encoder

# Run as a file, ``sys.path[0]`` is this folder: append the checkout root (after PYTHONPATH).
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.micro.http_cycle import Sink, hello
from server.config import Config
from server.protocols.h2 import H2Protocol
from server.sansio.h2 import PREFACE
from server.state import ServerState

STREAMS = 10
FIELDS = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:8000"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((kind, flags))
        + struct.pack(">I", stream_id)
        + payload
    )


def batches(count: int) -> list[bytes]:
    encoder = Encoder()
    out = []
    sid = 1
    for _ in range(count // STREAMS):
        parts = []
        for _ in range(STREAMS):
            parts.append(_frame(0x1, 0x5, sid, encoder.encode(FIELDS)))  # END_STREAM|END_HEADERS
            sid += 2
        out.append(b"".join(parts))
    return out


async def run(count: int) -> float:
    config = Config(app=hello, access_log=False)
    proto = H2Protocol(config, hello, ServerState())
    sink = Sink()
    proto.connection_made(sink)
    # Client preface, SETTINGS, and a connection window large enough for every response.
    proto.data_received(
        PREFACE + _frame(0x4, 0, 0, b"") + _frame(0x8, 0, 0, struct.pack(">I", 2**30))
    )
    work = batches(count)
    t0 = time.perf_counter()
    for batch in work:
        before = sink.count
        proto.data_received(batch)
        # Every stream answered and the turn's one write done (responses are batched).
        while proto.streams or sink.count == before:  # noqa: ASYNC110 - a bare loop turn
            await asyncio.sleep(0)
    return (time.perf_counter() - t0) / (len(work) * STREAMS) * 1e6


def main() -> None:
    import uvloop

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    if sys.argv[2:] == ["once"]:
        uvloop.run(run(count))  # one pass, for instruction counts
        return
    best = min(uvloop.run(run(count)) for _ in range(5))
    print(f"h2_cycle batches of {STREAMS} streams: {best:.1f} µs per request")


if __name__ == "__main__":
    main()
