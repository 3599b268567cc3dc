"""A fake transport for deterministic protocol tests (no sockets).

It records every ``write``/``writelines`` call separately, so tests can assert "one write per
ASGI send", and it can simulate a full socket buffer: ``fill()`` calls the protocol's
``pause_writing`` and ``drain_buffer()`` calls ``resume_writing``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


class FakeTransport(asyncio.Transport):
    def __init__(
        self,
        protocol: asyncio.BaseProtocol | None = None,
        *,
        peername: tuple[str, int] | str | None = ("127.0.0.1", 50000),
        sockname: tuple[str, int] | str | None = ("127.0.0.1", 8000),
        ssl: bool = False,
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.writes: list[bytes] = []
        self.closed = False
        self.closed_event = asyncio.Event()  # set with ``closed``: tests await it, never poll
        self.aborted = False
        self.reading = True
        self.write_limit_hit = False
        self._extra: dict[str, Any] = {
            "peername": peername,
            "sockname": sockname,
            "sslcontext": object() if ssl else None,
        }

    # --- what the protocol calls -------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        assert not self.closed, "writelines after close"
        self.writes.append(b"".join(bytes(d) for d in list_of_data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.closed_event.set()
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    # --- what the test calls -----------------------------------------------------------
    @property
    def data(self) -> bytes:
        return b"".join(self.writes)

    def clear(self) -> None:
        self.writes.clear()

    def fill(self) -> None:
        """Pretend the socket buffer passed its high-water mark."""
        self.write_limit_hit = True
        assert isinstance(self.protocol, asyncio.Protocol)
        self.protocol.pause_writing()

    def drain_buffer(self) -> None:
        """Pretend the socket buffer fell below its low-water mark."""
        self.write_limit_hit = False
        assert isinstance(self.protocol, asyncio.Protocol)
        self.protocol.resume_writing()

    def peer_closed(self) -> None:
        """The client went away."""
        self.closed = True
        self.closed_event.set()
        assert self.protocol is not None
        self.protocol.connection_lost(None)


class VirtualClock:
    """An event loop stand-in whose timers run on virtual time.

    Everything but the clock goes to the real running loop (tasks, futures); ``time``,
    ``call_at`` and ``call_later`` use a virtual clock that only moves when a test calls
    ``advance``, which runs the timers that came due, in order.  Hand it to a protocol as its
    ``loop`` to test timeouts of any length without waiting.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.now = 0.0
        self._timers: list[asyncio.TimerHandle] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, args, self._loop)
        self._timers.append(handle)
        return handle

    def call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        return self.call_at(self.now + delay, callback, *args)

    def advance(self, seconds: float) -> None:
        """Move the clock, running every timer due by then (including ones they schedule)."""
        end = self.now + seconds
        while True:
            due = [h for h in self._timers if not h.cancelled() and h.when() <= end]
            if not due:
                break
            handle = min(due, key=lambda h: h.when())
            self._timers.remove(handle)
            self.now = max(self.now, handle.when())
            handle._run()
        self.now = end
        self._timers = [h for h in self._timers if not h.cancelled()]
