"""HTTP/2 flow control, stream limits, graceful shutdown, and the denial-of-service attacks
(rapid reset CVE-2023-44487, CONTINUATION flood, HPACK bomb, PING/SETTINGS floods, a zero
window held forever), each sent by a real client over a real socket."""

from __future__ import annotations

import asyncio

import h2.events
import h2.settings
from h2.errors import ErrorCodes

from tests.server.apps import h2app
from tests.support.h2client import H2Client, frame
from tests.support.live import serve

ENHANCE_YOUR_CALM = int(ErrorCodes.ENHANCE_YOUR_CALM)


async def _settled(client: H2Client) -> None:
    """Wait for the server's SETTINGS (the server preface)."""
    await client.until(lambda: bool(client.remote_settings))


async def test_settings_advertised() -> None:
    async with (
        serve(h2app.app, http2_max_concurrent_streams=7, limit_request_header_size=5000) as srv,
        H2Client.connect(srv.port) as client,
    ):
        await _settled(client)
        codes = h2.settings.SettingCodes
        assert client.remote_settings[codes.MAX_CONCURRENT_STREAMS] == 7
        assert client.remote_settings[codes.MAX_HEADER_LIST_SIZE] == 5000
        assert client.remote_settings[codes.ENABLE_CONNECT_PROTOCOL] == 1


async def test_response_respects_a_small_client_window() -> None:
    # h2 (the client) checks every DATA frame against its window: an overrun would end the
    # connection with FLOW_CONTROL_ERROR instead of completing the response.
    small = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}
    async with serve(h2app.app) as srv, H2Client.connect(srv.port, settings=small) as client:
        await _settled(client)
        sid = client.request("GET", "/stream?n=8")
        response = client.responses[sid]
        await client.until(lambda: len(response.body) == 1000)
        assert not response.ended
        received = 0
        while not response.ended:
            if len(response.body) > received:
                client.acknowledge(sid, len(response.body) - received)
                received = len(response.body)
            await client.events()
        assert len(response.body) == 8 * 16384


async def test_request_window_opens_only_as_the_app_reads() -> None:
    release = h2app.reset()
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        await _settled(client)
        sid = client.request("POST", "/slow", end=False)
        await h2app.wait_for_record("slow-started")
        window = client.conn.local_flow_control_window(sid)
        for _ in range(window // 16384):
            client.conn.send_data(sid, b"x" * 16384)
        client.conn.send_data(sid, b"x" * (window % 16384))
        client.conn.ping(b"12345678")
        client.flush()
        await client.until(
            lambda: any(isinstance(e, h2.events.PingAckReceived) for e in client._all)
        )
        # The app has not read: no WINDOW_UPDATE for the stream, the client may not send more.
        assert not [u for u in client.window_updates if u[0] == sid]
        assert client.conn.local_flow_control_window(sid) == 0
        release.set()
        response = await client.response(sid)
        assert response.status == 200
        # Response complete while the body was unread: the client is told to stop (NO_ERROR).
        await client.until(lambda: response.reset is not None)
        assert response.reset == int(ErrorCodes.NO_ERROR)


async def test_large_upload_flows_through_window_updates() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        await _settled(client)
        sid = client.request("POST", "/echo", end=False)
        payload = bytes(range(256)) * 4096  # 1 MiB, many stream windows
        await client.send_body(sid, payload, end=True)
        response = client.responses[sid]
        received = 0
        while not response.ended:
            await client.events()
            if len(response.body) > received:
                client.acknowledge(sid, len(response.body) - received)
                received = len(response.body)
        assert bytes(response.body) == payload


async def test_reset_stream_delivers_http_disconnect() -> None:
    h2app.reset()
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        sid = client.request("GET", "/wait")
        client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        client.flush()
        await asyncio.wait_for(h2app.wait_for_record("http.disconnect"), 10)
        sid = client.request("GET", "/")
        assert (await client.response(sid)).status == 200  # the connection lives on


async def test_zero_window_held_forever_resets_the_stream() -> None:
    h2app.reset()
    closed = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    async with (
        serve(h2app.app, http2_send_timeout=0.3) as srv,
        H2Client.connect(srv.port, settings=closed) as client,
    ):
        sid = client.request("GET", "/stream?n=2")
        response = await client.response(sid)
        assert response.status == 200
        assert response.reset == int(ErrorCodes.CANCEL)
        await asyncio.wait_for(h2app.wait_for_record(("stream-done", 2)), 10)


async def test_streams_of_running_apps_count_against_the_limit() -> None:
    release = h2app.reset()
    async with (
        serve(h2app.app, http2_max_concurrent_streams=2) as srv,
        H2Client.connect(srv.port) as client,
    ):
        await _settled(client)
        first = [client.request("GET", "/slow") for _ in range(2)]
        await h2app.wait_for_record("slow-started")
        for sid in first:
            client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        # The client's h2 sees no open stream; our two apps still run.
        sid = client.request("GET", "/")
        response = await client.response(sid)
        assert response.reset == int(ErrorCodes.REFUSED_STREAM)
        release.set()


async def test_rapid_reset_gets_goaway_enhance_your_calm() -> None:
    async with (
        serve(h2app.app, http2_max_concurrent_streams=1000) as srv,
        H2Client.connect(srv.port) as client,
    ):
        await _settled(client)
        for _ in range(400):
            sid = client.request("GET", "/")
            client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        client.flush()
        await client.until(lambda: client.goaway is not None)
        assert client.goaway is not None
        assert client.goaway.error_code == ENHANCE_YOUR_CALM


async def test_continuation_flood_is_refused_early() -> None:
    async with (
        serve(h2app.app, limit_request_header_size=8192) as srv,
        H2Client.connect(srv.port) as client,
    ):
        await _settled(client)
        block = client.conn.encoder.encode(
            [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http")]
        )
        client.raw(frame(0x1, 0x0, 1, block))  # HEADERS without END_HEADERS
        junk = b"\x40\x01a\x01b" * 3000  # literal fields, never an END_HEADERS
        for _ in range(3):
            client.raw(frame(0x9, 0x0, 1, junk[:16384]))
        await client.until(lambda: client.goaway is not None)
        assert client.goaway is not None
        assert client.goaway.error_code == ENHANCE_YOUR_CALM


async def test_hpack_bomb_is_refused() -> None:
    async with (
        serve(h2app.app, limit_request_header_size=4096) as srv,
        H2Client.connect(srv.port) as client,
    ):
        await _settled(client)
        big = ("x-big", "a" * 3000)
        sid = client.request("GET", "/", [big])
        assert (await client.response(sid)).status == 200
        # The encoder now refers to the table entry: a few bytes on the wire decode to
        # 20 x 3000 bytes.
        client.request("GET", "/", [big] * 20)
        await client.until(lambda: client.goaway is not None)
        assert client.goaway is not None
        assert client.goaway.error_code == ENHANCE_YOUR_CALM


async def test_ping_flood() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        await _settled(client)
        client.raw(b"".join(frame(0x6, 0x0, 0, b"%08d" % i) for i in range(500)))
        await client.until(lambda: client.goaway is not None)
        assert client.goaway is not None
        assert client.goaway.error_code == ENHANCE_YOUR_CALM


async def test_settings_flood() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        await _settled(client)
        client.raw(frame(0x4, 0x0, 0) * 500)
        await client.until(lambda: client.goaway is not None)
        assert client.goaway is not None
        assert client.goaway.error_code == ENHANCE_YOUR_CALM


async def test_graceful_shutdown_sends_goaway_and_finishes_streams() -> None:
    release = h2app.reset()
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        sid = client.request("GET", "/slow")
        await h2app.wait_for_record("slow-started")
        srv.state.shutting_down = True
        for conn in list(srv.state.connections):
            conn.shutdown()
        await client.until(lambda: client.goaway is not None)
        assert client.goaway is not None
        assert client.goaway.error_code == int(ErrorCodes.NO_ERROR)
        assert client.goaway.last_stream_id == sid
        release.set()
        response = await client.response(sid)
        assert bytes(response.body) == b"finished"
        await client.wait_closed()
