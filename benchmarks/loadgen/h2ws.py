"""WebSocket echo over HTTP/2 (RFC 8441 extended CONNECT) load generator, workload H2-WS.

    python -m benchmarks.loadgen.h2ws --port P --clients 50 --streams 10 --duration 4

``--clients`` WebSocket sessions, carried ``--streams`` to a connection (h2c with prior
knowledge, 127.0.0.1 only), each keeping one 64-byte text message in flight, as workload C
does over HTTP/1.1.  Prints one JSON object in the shape of ``benchmarks.loadgen.ws echo``.

The ``h2`` library drives the connection; WebSocket frames inside the streams are built once
(masked, RFC 6455 section 5.3, which RFC 8441 section 5 keeps) and parsed by hand.  Every wait
is bounded (``--timeout``), and the run stops by itself after the windows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import time
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import uvloop

from benchmarks.loadgen.ws import (
    ECHO_FRAME,
    ECHO_PAYLOAD,
    Meter,
    add_run_arguments,
    percentile,
    start,
)
from benchmarks.loadgen.wsclient import OP_CLOSE, OP_TEXT, masked_frame
from benchmarks.windows import WindowPlan

# Windows large enough that flow control never holds an echo back; what the server consumes
# is acknowledged as it arrives anyway.
WINDOW = 2**24
_CLOSE = masked_frame(OP_CLOSE, struct.pack("!H", 1000))


class Session:
    """One WebSocket over one stream: its receive buffer and its message in flight."""

    __slots__ = ("buf", "open", "sent_at", "stream_id")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.buf = bytearray()
        self.sent_at = 0.0
        self.open = False


class Connection(asyncio.Protocol):
    """One HTTP/2 connection carrying several RFC 8441 WebSocket sessions."""

    def __init__(self, gen: Echo, authority: bytes, path: bytes, streams: int) -> None:
        self.gen = gen
        self.authority = authority
        self.path = path
        self.wanted = streams
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.sessions: dict[int, Session] = {}
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()  # all sessions open (or failed)
        self.errors: list[str] = []
        self.settled = False

    # --- asyncio ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        conn = self.conn
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        conn.initiate_connection()
        conn.increment_flow_control_window(WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail(f"protocol error: {exc}")
            return
        for event in events:
            kind = type(event)
            if kind is h2.events.DataReceived:
                sid = event.stream_id
                self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                session = self.sessions.get(sid)
                if session is not None:
                    session.buf += event.data
                    self._frames(session)
            elif kind is h2.events.RemoteSettingsChanged and not self.sessions:
                self._open_sessions()
            elif kind is h2.events.ResponseReceived:
                self._response(event)
            elif kind in (h2.events.StreamReset, h2.events.StreamEnded):
                session = self.sessions.get(event.stream_id)
                if session is not None and session.open:
                    session.open = False
                    self.gen.dropped += 1
            elif kind is h2.events.ConnectionTerminated:
                self._fail(f"GOAWAY {event.error_code!r}")
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("connection lost")
        self.gen.dropped += sum(1 for s in self.sessions.values() if s.open)
        for session in self.sessions.values():
            session.open = False

    # --- sessions ---------------------------------------------------------------------
    def _open_sessions(self) -> None:
        settings = self.conn.remote_settings
        if not settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL):
            self._fail("the server does not offer RFC 8441 (SETTINGS_ENABLE_CONNECT_PROTOCOL)")
            return
        for _ in range(self.wanted):
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(
                sid,
                [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"http"),
                    (b":path", self.path),
                    (b":authority", self.authority),
                    (b"sec-websocket-version", b"13"),
                ],
            )
            self.sessions[sid] = Session(sid)

    def _response(self, event: Any) -> None:
        session = self.sessions.get(event.stream_id)
        if session is None:
            return
        status = dict(event.headers).get(b":status")
        if status == b"200":
            session.open = True
        else:
            self.errors.append(f"extended CONNECT answered {status!r}")
        if all(s.open for s in self.sessions.values()) or self.errors:
            self._settle()

    def _frames(self, session: Session) -> None:
        """Parse the server's (unmasked) frames; answer each echo with the next message."""
        buf = session.buf
        gen = self.gen
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            n = buf[1] & 0x7F
            at = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = int.from_bytes(buf[2:4], "big")
                at = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = int.from_bytes(buf[2:10], "big")
                at = 10
            if len(buf) < at + n:
                return
            payload = bytes(buf[at : at + n])
            del buf[: at + n]
            if opcode == OP_TEXT:
                gen.on_message(self, session, payload)
            elif opcode == OP_CLOSE:
                session.open = False

    def send(self, session: Session, frame: bytes) -> None:
        if not session.open:
            return
        if self.conn.local_flow_control_window(session.stream_id) < len(frame):
            # The server did not reopen its window: this session stops (counted as dropped)
            # rather than breaking the others with h2's FlowControlError.
            session.open = False
            self.gen.dropped += 1
            return
        self.conn.send_data(session.stream_id, frame)

    def close_sessions(self) -> None:
        for session in self.sessions.values():
            if session.open:
                self.conn.send_data(session.stream_id, _CLOSE)
                session.open = False
        self._flush()

    # --- plumbing ---------------------------------------------------------------------
    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def _fail(self, reason: str) -> None:
        if not self.settled:
            self.errors.append(reason)
            self._settle()

    def _settle(self) -> None:
        if not self.settled:
            self.settled = True
            if not self.ready.done():
                self.ready.set_result(None)


class Echo:
    """Closed-loop echo over every session; counts round trips while a window measures."""

    def __init__(self) -> None:
        self.running = True
        self.measuring = False
        self.round_trips = 0
        self.mismatches = 0
        self.dropped = 0
        self.latencies: list[float] = []

    def on_message(self, conn: Connection, session: Session, payload: bytes) -> None:
        now = time.perf_counter()
        if self.measuring:
            self.latencies.append(now - session.sent_at)
            self.round_trips += 1
        if payload != ECHO_PAYLOAD:
            self.mismatches += 1
        if self.running:
            session.sent_at = now
            conn.send(session, ECHO_FRAME)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    gen = Echo()
    authority = f"{args.host}:{args.port}".encode()
    per_conn = max(1, args.streams)
    conns: list[Connection] = []
    errors: list[str] = []
    left = args.clients
    while left > 0:
        streams = min(per_conn, left)
        left -= streams
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda n=streams: Connection(gen, authority, args.path.encode(), n),
                    args.host,
                    args.port,
                ),
                args.timeout,
            )
        except (OSError, TimeoutError) as exc:
            errors.append(f"connect: {exc!r}")
            continue
        conns.append(proto)
    for proto in conns:
        try:
            await asyncio.wait_for(asyncio.shield(proto.ready), args.timeout)
        except TimeoutError:
            proto.errors.append("no answer to extended CONNECT in time")
        errors += proto.errors
    live = [(c, s) for c in conns for s in c.sessions.values() if s.open]
    result: dict[str, Any] = {
        "mode": "h2ws-echo",
        "clients": args.clients,
        "streams_per_connection": per_conn,
        "connected": len(live),
        "connect_errors": args.clients - len(live),
        "connect_error_samples": errors[:3],
        "windows": [],
        "discarded_windows": [],
    }
    if not live:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
        return result
    for conn, session in live:
        session.sent_at = time.perf_counter()
        conn.send(session, ECHO_FRAME)
    for conn in conns:
        conn._flush()
    await asyncio.sleep(args.warmup)
    plan = WindowPlan(args.repeats, args.extra_windows, args.max_contention)
    while plan.more():
        gen.latencies.clear()
        gen.round_trips = gen.mismatches = 0
        meter = Meter(args.server_pid, args.server_core)
        gen.measuring = True
        await asyncio.sleep(args.duration)
        gen.measuring = False
        window = meter.stop()
        values = sorted(gen.latencies)
        kept = plan.keep(window["others_on_server_core_pct"])
        result["windows" if kept else "discarded_windows"].append(
            {
                **window,
                "round_trips": gen.round_trips,
                "rate": gen.round_trips / window["wall_s"],
                "p50_ms": 1000 * percentile(values, 0.50),
                "p99_ms": 1000 * percentile(values, 0.99),
                "mismatches": gen.mismatches,
            }
        )
    gen.running = False
    result["dropped_connections"] = gen.dropped
    for conn in conns:
        conn.close_sessions()
        if conn.transport is not None:
            conn.transport.close()
    return result


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/ws/echo/")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--streams", type=int, default=10, help="WebSocket streams per connection")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--repeats", type=int, default=3)
    add_run_arguments(p, timeout_help="connect/CONNECT timeout (s)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if not start(args):
        return 2
    result = uvloop.run(run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
