"""Workload F, the ceiling: a bare uvloop ``asyncio.Protocol`` with a canned keep-alive response.

No HTTP parsing beyond finding the end of each request head (wrk sends body-less GETs), no ASGI,
no framework: the gap between this and any server is what parsing + ASGI + the app cost.

    python bench_bare.py --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import cast

import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n\r\nHello, world!"


class CannedResponder(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.rfind(b"\r\n\r\n")
        if end < 0:
            return
        # Pipelined requests get all their responses in one write.
        count = self.buffer.count(b"\r\n\r\n", 0, end + 4)
        del self.buffer[: end + 4]
        assert self.transport is not None
        self.transport.write(RESPONSE * count)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(CannedResponder, host, port, backlog=2048)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
