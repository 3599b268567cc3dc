"""The load of ``python -m benchmarks soak`` (see ``benchmarks/soak.py``): a steady mix of
HTTP keep-alive GETs, WebSocket echo clients, group fan-out and chat-connection churn against one
server, each client paced at a fixed rate, its successes and errors counted."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.loadgen.wsclient import OP_TEXT, HandshakeError, WSClient, connect, masked_frame

HOST = "127.0.0.1"
LIMIT = 10.0  # seconds any single step of a client may take before it counts as an error


@dataclass(frozen=True)
class Mix:
    """The load (rates are totals per second unless said otherwise)."""

    http_connections: int = 4
    http_rate: float = 200.0
    echo_clients: int = 20
    echo_rate: float = 5.0  # per client
    group_members: int = 50
    fanout_rate: float = 2.0  # group_sends to the members' group
    churn_rate: float = 20.0  # chat connections opened and closed
    churn_parallel: int = 4  # at most this many churn connections at once
    chat_rooms: int = 10

    @property
    def transient(self) -> int:
        """Connections that may be open at a sample besides the persistent ones: churn,
        the sampler's own request, one HTTP reconnect."""
        return self.churn_parallel + 2


@dataclass
class Tally:
    ok: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 10:
            self.first_errors.append(what)


class Ticker:
    """Fixed-rate pacing: ``tick()`` returns every ``1 / rate`` seconds whatever the work in
    between took (ticks missed while busy are skipped, never bunched up); False once the load
    stops."""

    def __init__(self, rate: float, load: Load) -> None:
        self.period = 1.0 / rate
        self.load = load
        self.next: float | None = None

    async def tick(self) -> bool:
        now = asyncio.get_running_loop().time()
        self.next = now if self.next is None else max(self.next + self.period, now)
        return await self.load.pause(self.next - now)


@dataclass
class Load:
    port: int
    mix: Mix
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    http: Tally = field(default_factory=Tally)
    echo: Tally = field(default_factory=Tally)
    fanout: Tally = field(default_factory=Tally)  # ok: deliveries received
    churn: Tally = field(default_factory=Tally)
    bursts: int = 0
    members: list[WSClient] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Fan-out deliveries that never arrived (bursts whose group_send returned)."""
        expected = self.bursts * self.mix.group_members
        return max(0, expected - sum(c.count for c in self.members))

    def summary(self) -> dict[str, Any]:
        return {
            "http_requests": asdict(self.http),
            "ws_echoes": asdict(self.echo),
            "fanout_deliveries": {**asdict(self.fanout), "bursts": self.bursts, "lost": self.lost},
            "churn_connections": asdict(self.churn),
        }

    @property
    def errors(self) -> int:
        tallies = (self.http, self.echo, self.fanout, self.churn)
        return sum(t.errors for t in tallies) + self.lost

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopping first; False once stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return not self.stop.is_set()

    def ticker(self, rate: float) -> Ticker:
        return Ticker(rate, self)

    # HTTP keep-alive ---------------------------------------------------------------------
    async def http_client(self) -> None:
        ticker = self.ticker(self.mix.http_rate / self.mix.http_connections)
        request = f"GET / HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode()
        while not self.stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.port), LIMIT
                )
            except (OSError, TimeoutError) as exc:
                self.http.error(f"connect: {exc!r}")
                await self.pause(1.0)
                continue
            try:
                while await ticker.tick():
                    writer.write(request)
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), LIMIT)
                    fields = head.lower().split(b"\r\n")
                    length = next(
                        int(f.split(b":", 1)[1]) for f in fields if f.startswith(b"content-length:")
                    )
                    await asyncio.wait_for(reader.readexactly(length), LIMIT)
                    if not fields[0].startswith(b"http/1.1 200"):
                        self.http.error(fields[0].decode("latin-1"))
                    else:
                        self.http.ok += 1
                    if b"connection: close" in fields:
                        break
            except (OSError, TimeoutError, asyncio.IncompleteReadError, StopIteration) as exc:
                self.http.error(f"request: {exc!r}")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    # WebSocket echo ----------------------------------------------------------------------
    async def echo_client(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[bytes]] = []

        def on_message(c: WSClient, payload: bytes) -> None:
            if waiting and not waiting[0].done():
                waiting[0].set_result(payload)

        try:
            client = await connect(HOST, self.port, "/ws/echo/", on_message, LIMIT)
        except (OSError, TimeoutError, HandshakeError) as exc:
            self.echo.error(f"connect: {exc!r}")
            return
        payload = f"echo {index}".ljust(64).encode()
        frame = masked_frame(OP_TEXT, payload)
        ticker = self.ticker(self.mix.echo_rate)
        try:
            while await ticker.tick():
                waiting[:] = [loop.create_future()]
                client.send_raw(frame)
                try:
                    got = await asyncio.wait_for(waiting[0], LIMIT)
                except TimeoutError:
                    self.echo.error("no echo within the limit")
                    continue
                if got == payload:
                    self.echo.ok += 1
                else:
                    self.echo.error(f"wrong echo {got[:40]!r}")
                if client.closed.done():
                    self.echo.error(f"closed by the server ({client.close_code})")
                    return
        finally:
            await close_client(client)

    # group fan-out -----------------------------------------------------------------------
    async def fanout_run(self) -> None:
        progress = asyncio.Event()

        def on_member(c: WSClient, payload: bytes) -> None:
            c.count += 1
            progress.set()

        members, errors = await _connect_many(
            self.port, "/ws/group/", self.mix.group_members, on_member
        )
        self.members = members
        for err in errors:
            self.fanout.error(f"member connect: {err}")
        done: list[asyncio.Future[None]] = []

        def on_trigger(c: WSClient, payload: bytes) -> None:
            if payload == b"done" and done and not done[0].done():
                done[0].set_result(None)

        try:
            trigger = await connect(HOST, self.port, "/ws/trigger/", on_trigger, LIMIT)
        except (OSError, TimeoutError, HandshakeError) as exc:
            self.fanout.error(f"trigger connect: {exc!r}")
            await self._close_members()
            return
        loop = asyncio.get_running_loop()
        ticker = self.ticker(self.mix.fanout_rate)
        try:
            while await ticker.tick():
                done[:] = [loop.create_future()]
                trigger.send_raw(masked_frame(OP_TEXT, f"burst 1 {self.bursts}".encode()))
                try:
                    await asyncio.wait_for(done[0], LIMIT)
                except TimeoutError:
                    self.fanout.error("group_send did not return within the limit")
                    continue
                self.bursts += 1
            # The last burst may still be on its way to some members: wait for it (bounded).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LIMIT):
                    while any(m.count < self.bursts for m in members):
                        progress.clear()
                        await progress.wait()
        finally:
            await close_client(trigger)
            self.fanout.ok = sum(m.count for m in members)
            await self._close_members()

    async def _close_members(self) -> None:
        await asyncio.gather(*(close_client(m) for m in self.members))

    # churn -------------------------------------------------------------------------------
    async def churn_run(self) -> None:
        gate = asyncio.Semaphore(self.mix.churn_parallel)
        running: set[asyncio.Task[None]] = set()
        n = 0
        ticker = self.ticker(self.mix.churn_rate)
        while await ticker.tick():
            await gate.acquire()
            task = asyncio.create_task(self.chat_once(n))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: gate.release())
            n += 1
        if running:
            await asyncio.wait(running)

    async def chat_once(self, n: int) -> None:
        mine = f"chat {n}".encode()
        loop = asyncio.get_running_loop()
        got: asyncio.Future[None] = loop.create_future()

        def on_message(c: WSClient, payload: bytes) -> None:
            if payload == mine and not got.done():
                got.set_result(None)

        room = f"/ws/chat/r{n % self.mix.chat_rooms}/"
        try:
            client = await connect(HOST, self.port, room, on_message, LIMIT)
        except (OSError, TimeoutError, HandshakeError) as exc:
            self.churn.error(f"connect: {exc!r}")
            return
        try:
            client.send_raw(masked_frame(OP_TEXT, mine))
            await asyncio.wait_for(got, LIMIT)
            self.churn.ok += 1
        except TimeoutError:
            self.churn.error("own chat message not received back within the limit")
        finally:
            await close_client(client)


async def _connect_many(
    port: int, path: str, count: int, on_message: Any
) -> tuple[list[WSClient], list[str]]:
    from benchmarks.loadgen.wsclient import connect_many

    return await connect_many(HOST, port, path, count, on_message, limit_s=LIMIT)


async def close_client(client: WSClient) -> None:
    """Close handshake (RFC 6455 section 7), bounded; abort what does not finish."""
    client.start_close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(client.closed), LIMIT)
    if client.transport is not None and not client.transport.is_closing():
        client.transport.abort()
