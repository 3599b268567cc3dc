"""Instruction counts for a WebSocket echo round trip, steady under a loaded machine.

As ``http_instructions``: run under callgrind once with ``N`` round trips and once with none;
the difference divided by ``N`` is the cost of one round trip (a masked 64-byte text frame in,
its echo out, through ``WebSocketProtocol`` and a sink transport; ``ws_echo``'s shapes):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/micro/ws_instructions.py N [--metrics]

``--metrics``: as with ``--metrics-port``: the config says so and the server's
``MetricsService`` is created, which activates the recorder the protocol records into.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

# Run as a file, ``sys.path[0]`` is this folder: append the checkout root (after PYTHONPATH).
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.micro.http_cycle import Sink
from benchmarks.micro.ws_echo import FRAME, SCOPE_HEADERS, TEXT, echo
from server.config import Config
from server.protocols.websocket import WebSocketProtocol
from server.state import ServerState


async def run(n: int, metrics: bool) -> None:
    loop = asyncio.get_running_loop()
    config = Config(access_log=False, metrics_port=0 if metrics else None)
    state = ServerState()
    if metrics:
        from server.metrics.service import MetricsService

        MetricsService(config, state)
    ws = WebSocketProtocol(config, echo, state, loop)
    sink = Sink()
    feed = ws.data_received
    scope: Any = {"type": "websocket", "headers": SCOPE_HEADERS, "path": "/"}
    ws.start_upgrade(sink, scope, b"")
    while sink.count < 1:  # noqa: ASYNC110 - a bare loop turn, as a socket read
        await asyncio.sleep(0)
    for i in range(2, n + 2):
        feed(FRAME)
        while sink.count < i:  # noqa: ASYNC110
            await asyncio.sleep(0)
    assert n == 0 or sink.last == b"\x81\x40" + TEXT.encode(), sink.last
    if metrics:
        from server.metrics import recorder

        assert recorder.active is not None and recorder.active.ws_messages_in == n
    assert ws.task is not None
    ws.task.cancel()


def main() -> None:
    import uvloop

    uvloop.run(run(int(sys.argv[1]), "--metrics" in sys.argv[2:]))


if __name__ == "__main__":
    main()
