"""Backpressure in both directions for one connection.

* Reading: the protocol calls ``pause_reading`` when it holds as much unconsumed input as it is
  willing to buffer (the app is not calling ``receive`` fast enough) and ``resume_reading`` once
  the app has drained it.  Calls are idempotent so callers need not track the state.
* Writing: the transport calls ``pause_writing``/``resume_writing`` around its high/low water
  marks; ``drain()`` makes the app's ``send`` wait while the transport buffer is full.
"""

from __future__ import annotations

import asyncio


class FlowControl:
    __slots__ = ("_drain_waiter", "_transport", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake()

    def connection_lost(self) -> None:
        """Wake any drain waiter so an app blocked in ``send`` returns (and sees disconnect)."""
        self.write_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        if not self.write_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain_waiter)
