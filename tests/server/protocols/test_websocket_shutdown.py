"""Graceful shutdown under WebSocket load, with ``python -m server`` as a real process.

Every message whose ``send`` returned to the app before SIGTERM (and after it, until the
connection started closing) reaches its client, in order, before the 1001 Close.
"""

from __future__ import annotations

import contextlib
import signal

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.server.apps.proc import ServerProcess

pytestmark = pytest.mark.slow

CLIENTS = 4


def test_sigterm_delivers_every_acknowledged_message_before_1001() -> None:
    proc = ServerProcess(["tests.server.apps.ws_burst:app", "--port", "0"])
    try:
        base = proc.wait_listening().replace("http://", "ws://")
        clients: list[ClientConnection] = []
        stack = contextlib.ExitStack()
        for i in range(CLIENTS):
            # max_queue: the client stops reading after a few messages, so the server's
            # buffers fill and the app is held in send() by backpressure at SIGTERM.
            ws = stack.enter_context(
                connect(f"{base}/c{i}", max_queue=4, compression=None, open_timeout=10)
            )
            clients.append(ws)
            assert ws.recv(timeout=10).startswith("00000000 ")
        proc.signal(signal.SIGTERM)
        proc.wait_for("Stopped accepting")
        received: dict[str, int] = {}
        for i, ws in enumerate(clients):
            count = 1
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    message = ws.recv(timeout=10)
                    assert message.startswith(f"{count:08d} "), (count, message[:20])
                    count += 1
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            received[f"/c{i}"] = count
        stack.close()
        assert proc.wait_exit() == 0
        acked = {}
        for line in proc.lines:
            if line.startswith("ACKED "):
                _, path, n = line.split()
                acked[path] = int(n)
        assert acked == received
        assert all(n > 4 for n in received.values())  # it was under load, not idle
    finally:
        proc.close()
