"""Connections and bytes, counted without touching the protocol classes.

With metrics on, the runtime's protocol factory returns a :class:`Tap` around each
``HttpProtocol``: the event loop talks to the tap, which counts bytes read and hands the
protocol a :class:`MeteredTransport` that counts bytes written.  An upgrade
(``transport.set_protocol(ws)``) swaps the protocol behind the tap and moves the connection
to that protocol's counters, so WebSocket traffic is counted as ``websocket``.

With metrics off none of this exists: the loop talks to ``HttpProtocol`` directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from server.metrics.recorder import Recorder
from server.writer import writelines


def protocol_label(protocol: object) -> str:
    """``HttpProtocol`` -> ``http``, ``WebSocketProtocol`` -> ``websocket``: bounded by the
    protocol classes the server has."""
    return type(protocol).__name__.removesuffix("Protocol").lower() or "other"


class Tap(asyncio.Protocol):
    __slots__ = ("inner", "recorder", "stats", "transport")

    def __init__(self, inner: asyncio.Protocol, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.stats = recorder.protocol(protocol_label(inner))
        self.transport: MeteredTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stats.open += 1
        metered = self.transport = MeteredTransport(cast(asyncio.Transport, transport), self)
        # Duck-typed: it has every method a protocol of ours calls on its transport.
        self.inner.connection_made(cast(asyncio.Transport, metered))

    def data_received(self, data: bytes) -> None:
        self.stats.bytes_in += len(data)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open -= 1
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def switch(self, protocol: asyncio.Protocol) -> None:
        """The connection now belongs to ``protocol`` (an upgrade)."""
        self.inner = protocol
        stats = self.recorder.protocol(protocol_label(protocol))
        if stats is not self.stats:
            self.stats.open -= 1
            stats.open += 1
            self.stats = stats


class MeteredTransport:
    """The transport the protocols see: counts written bytes, forwards everything else.

    It deliberately has no ``_sendfile_compatible``: ``pathsend`` then takes the read/write
    path (as on uvloop and TLS), whose bytes are counted like any other write.
    """

    __slots__ = ("_tap", "_transport")

    def __init__(self, transport: asyncio.Transport, tap: Tap) -> None:
        self._transport = transport
        self._tap = tap

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tap.stats.bytes_out += len(data)
        self._transport.write(data)

    def writelines(self, list_of_data: Sequence[bytes | bytearray | memoryview]) -> None:
        total = 0
        for part in list_of_data:
            total += len(part)
        self._tap.stats.bytes_out += total
        writelines(self._transport, list_of_data)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._tap.switch(protocol)  # type: ignore[arg-type]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._tap.inner

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high=high, low=low)
