"""Driving ``HTTP11Connection`` over whole streams, for comparing its two parsing paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.sansio.http11 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    HTTP11Connection,
    RequestError,
    RequestHead,
)


class H11Only(HTTP11Connection):
    """Every cycle is read by h11 (the reference the strict parser is compared with)."""

    __slots__ = ()
    strict_parser = False


def head_record(head: RequestHead) -> tuple[Any, ...]:
    """What a request head means: request line, fields in order, framing, connection facts."""
    return (
        "head",
        head.method,
        head.target,
        head.http_version,
        tuple(head.headers),
        head.content_length,
        head.chunked,
        head.keep_alive,
        head.has_body,
        head.expect_continue,
        head.websocket,
    )


def drive_cycles(
    chunks: list[bytes],
    *,
    eof: bool = False,
    reference: bool = False,
    conn: HTTP11Connection | None = None,
    record: Callable[[RequestHead], tuple[Any, ...]] = head_record,
    stop_after_close: bool = True,
) -> list[Any]:
    """Events over every cycle of a connection fed ``chunks`` (body data merged; an error ends
    the run as ``("error", status)``), each head as ``record`` gives it.  ``conn``: the
    connection to feed (default: a new one, h11 only with ``reference``);
    ``stop_after_close``: a head without keep-alive ends the run as ``("close-after",)``."""
    if conn is None:
        conn = H11Only() if reference else HTTP11Connection()
    out: list[Any] = []

    def pump() -> bool:
        while True:
            try:
                event = conn.next_event()
            except RequestError as exc:
                out.append(("error", exc.status))
                return False
            if isinstance(event, RequestHead):
                out.append(record(event))
            elif isinstance(event, Data):
                if out and out[-1][0] == "data":
                    out[-1] = ("data", out[-1][1] + bytes(event.data))
                else:
                    out.append(("data", bytes(event.data)))
            elif isinstance(event, EndOfMessage):
                out.append(("end",))
            elif isinstance(event, ConnectionClosed):
                out.append(("closed",))
                return False
            elif event is PAUSED:
                if stop_after_close and conn.head is not None and not conn.head.keep_alive:
                    out.append(("close-after",))
                    return False
                conn.start_next_cycle()
            elif event is NEED_DATA:
                return True

    for chunk in chunks:
        conn.receive_data(chunk)
        if not pump():
            return out
    if eof:
        conn.receive_eof()
        pump()
    return out
