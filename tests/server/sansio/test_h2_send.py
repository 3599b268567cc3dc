"""``server.sansio.h2_send``: frames written straight into h2's buffer are the very bytes h2's
public methods write, and leave h2 in the same state (windows, stream states)."""

from __future__ import annotations

from collections.abc import Iterator

import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sansio.h2 import H2Server, Request

_GET = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]


def _pair(fast: bool) -> tuple[H2Server, h2.connection.H2Connection, list[int]]:
    server = H2Server()
    if not fast:
        server._fast = None  # h2's public send methods
    server.initiate()
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    client.receive_data(server.data_to_send())
    sids = []
    for _ in range(3):
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, _GET, end_stream=True)
        sids.append(sid)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [e.stream_id for e in events if isinstance(e, Request)] == sids
    return server, client, sids


def _script(
    server: H2Server, client: h2.connection.H2Connection, sids: list[int], big: int
) -> Iterator[bytes]:
    """Responses of every shape: interim, a head larger than a frame (CONTINUATION), a body
    larger than the window, trailers; yields the wire bytes after each step."""
    a, b, c = sids
    wire = []
    assert server.send_headers(b, [(b":status", b"204")], end_stream=True)
    assert server.send_headers(c, [(b":status", b"200"), (b"content-type", b"text/plain")])
    assert server.send_data(c, b"body", False) == 4
    assert server.send_headers(c, [(b"x-trailer", b"1")], end_stream=True)
    wire.append(server.data_to_send())
    yield wire[-1]
    assert server.send_headers(a, [(b":status", b"100")])
    assert server.send_headers(a, [(b":status", b"200"), (b"x-big", b"v" * big)])
    sent = server.send_data(a, b"x" * 100_000, True)
    assert 0 < sent < 100_000
    wire.append(server.data_to_send())
    yield wire[-1]
    # The client opens the window; the rest of the first body goes out.
    for event in client.receive_data(b"".join(wire)):
        if isinstance(event, h2.events.DataReceived):
            client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
    server.receive_data(client.data_to_send(), 0.0)
    assert server.send_data(a, memoryview(b"x" * 100_000)[sent:], True) > 0
    yield server.data_to_send()
    # Sending on a finished stream fails the same way.
    assert not server.send_headers(b, [(b":status", b"200")])
    assert server.send_data(b, b"late", True) == -1
    yield server.data_to_send()


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=40_000))
def test_fast_path_writes_what_h2_writes(big: int) -> None:
    outputs = []
    for fast in (True, False):
        server, client, sids = _pair(fast)
        assert (server._fast is not None) == fast
        steps = list(_script(server, client, sids, big))
        conn = server._conn
        streams = {
            sid: (s.state_machine.state, s.outbound_flow_control_window)
            for sid, s in conn.streams.items()
        }
        outputs.append((steps, conn.outbound_flow_control_window, streams))
    assert outputs[0] == outputs[1]


def test_the_fast_path_is_in_use() -> None:
    pytest.importorskip("h2.stream")
    server = H2Server()
    assert server._fast is not None
