"""A small, bounded HTTP/1.1 keep-alive load generator that counts every failed request.

    load = HttpLoad("127.0.0.1", port, "/pid", connections=16)
    task = asyncio.create_task(load.run())
    ...
    await load.stop()          # every connection finishes its current request first
    assert load.failures == []

Each connection sends ``GET path`` and reads the response (Content-Length framed, as every test
app answers) in a loop.  A response with ``connection: close`` ends the connection cleanly and a
new one is opened, as wrk and browsers do; anything else that ends a request without its full
response (reset, EOF, refused connection) is a failure, recorded with the reason.  Response
bodies are counted (``bodies``), which tells which worker (a ``/pid`` body) served them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib


class HttpLoad:
    def __init__(self, host: str, port: int, path: str = "/", *, connections: int = 16) -> None:
        self.host = host
        self.port = port
        self.request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")
        self.connections = connections
        self.ok = 0
        self.reconnects = 0  # connections ended by the server with "connection: close"
        self.failures: list[str] = []
        self.bodies: collections.Counter[bytes] = collections.Counter()
        self._stopping = False
        self._progress = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.connections)]
        await asyncio.gather(*self._tasks)

    async def stop(self, within: float = 10.0) -> None:
        self._stopping = True
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*self._tasks), within)

    async def wait_for_responses(self, count: int, within: float = 10.0) -> None:
        """Return once at least ``count`` more responses were received (bounded)."""
        target = self.ok + count
        async with asyncio.timeout(within):
            while self.ok < target:
                if self.failures and self.ok == 0:
                    raise AssertionError(f"load fails from the start: {self.failures[:3]}")
                self._progress.clear()
                await self._progress.wait()

    async def _client(self) -> None:
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                self.failures.append(f"connect: {exc!r}")
                await asyncio.sleep(0.01)  # don't spin on a refused port
                continue
            try:
                await self._requests(reader, writer)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not self._stopping:
            try:
                writer.write(self.request)
                head = await reader.readuntil(b"\r\n\r\n")
                fields = head.lower().split(b"\r\n")
                length = next(
                    int(f.split(b":", 1)[1]) for f in fields if f.startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                self.failures.append(f"request: {exc!r}")
                return
            if not fields[0].startswith(b"http/1.1 200"):
                self.failures.append(f"status: {fields[0]!r}")
            self.ok += 1
            self.bodies[body] += 1
            self._progress.set()
            if b"connection: close" in fields:
                self.reconnects += 1
                return
