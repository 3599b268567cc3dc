"""HttpProtocol's phases (``Phase``, ``TRANSITIONS``): the table itself, and the phases a
connection goes through for real input (keep-alive, a partial head, a client that does not
read, an error that lingers, an upgrade, the end)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from server.config import Config
from server.protocols import http as http_module
from server.protocols.http import HttpProtocol
from server.protocols.http_phase import ENDED, TRANSITIONS, Phase
from server.state import ServerState
from tests.server.protocols.test_http_protocol import GET, make, settle
from tests.server.protocols.test_http_protocol import hello as http_hello
from tests.support.fakes import FakeTransport


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close"})
        return
    await http_hello(scope, receive, send)


@pytest.mark.parametrize(("start", "end"), list(itertools.product(Phase, Phase)))
async def test_every_move_is_allowed_or_refused_by_the_table(start: Phase, end: Phase) -> None:
    proto, _t, _state = make(hello)
    proto.phase = start
    if end in TRANSITIONS[start]:
        proto._to(end)
        assert proto.phase is end
        assert proto.closed == (end in ENDED)
    else:
        with pytest.raises(RuntimeError, match=f"from {start.name} to {end.name}"):
            proto._to(end)
        assert proto.phase is start


def test_ended_phases_go_nowhere_but_closed() -> None:
    assert TRANSITIONS[Phase.CLOSED] == frozenset()
    assert TRANSITIONS[Phase.HANDED_OFF] == frozenset()
    assert TRANSITIONS[Phase.LINGERING] == frozenset({Phase.CLOSED})
    # ``closed`` is computed as "phase >= LINGERING": the ended phases are the last three.
    assert {p for p in Phase if p >= Phase.LINGERING} == ENDED


async def test_keep_alive_request_goes_idle_request_idle() -> None:
    seen: list[Phase] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(proto.phase)
        await hello(scope, receive, send)

    proto, t, state = make(app)
    assert proto.phase is Phase.IDLE
    proto.data_received(GET)
    assert proto.phase is Phase.REQUEST
    await settle(state)
    assert seen == [Phase.REQUEST]
    assert proto.phase is Phase.IDLE and not proto.closed
    assert t.data.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_partial_head_is_head_then_request() -> None:
    proto, _t, state = make(hello)
    proto.data_received(GET[:10])
    assert proto.phase is Phase.HEAD
    proto.data_received(GET[10:])
    assert proto.phase is Phase.REQUEST
    await settle(state)
    assert proto.phase is Phase.IDLE


async def test_pipelined_request_behind_a_client_that_does_not_read_is_blocked() -> None:
    proto, t, state = make(hello)
    t.fill()  # the client stops reading our responses
    proto.data_received(GET + GET)
    await settle(state)
    assert proto.phase is Phase.BLOCKED and not t.reading
    assert t.data.count(b"HTTP/1.1 200 OK") == 1
    t.drain_buffer()  # it reads again: the second request is served
    await settle(state)
    assert t.data.count(b"HTTP/1.1 200 OK") == 2
    assert proto.phase is Phase.IDLE


class HalfClosable(FakeTransport):
    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def test_refused_request_lingers_then_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "LINGER_TIMEOUT", 0.0)
    config = Config(app=hello, date_header=False, server_header=False, limit_request_body=1)
    state = ServerState()
    proto = HttpProtocol(config, hello, state, asyncio.get_running_loop())
    t = HalfClosable(proto)
    proto.connection_made(t)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
    assert proto.phase is Phase.LINGERING and proto.closed
    assert t.data.startswith(b"HTTP/1.1 413 ")
    await t.closed_event.wait()  # the linger timer ends it
    for _ in range(100):  # connection_lost follows on a later loop turn (call_soon)
        if proto.phase is Phase.CLOSED:
            break
        await asyncio.sleep(0)
    assert proto.phase is Phase.CLOSED


async def test_websocket_upgrade_hands_the_connection_off() -> None:
    proto, t, state = make(hello)
    proto.data_received(
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert proto.phase is Phase.HANDED_OFF and proto.closed
    assert proto not in state.connections and t.protocol is not proto
    await settle(state)


async def test_connection_lost_closes_from_any_live_phase() -> None:
    proto, _t, _state = make(hello)
    proto.data_received(GET[:5])
    assert proto.phase is Phase.HEAD
    proto.connection_lost(None)
    assert proto.phase is Phase.CLOSED and proto.closed
