"""--timeout-request-body on HTTP/2 streams, over a real socket: a stream whose body stalls is
given up on its own (408, or RST_STREAM once the response started) and the app sees
http.disconnect; the connection and its other streams go on."""

from __future__ import annotations

import contextlib

from h2.errors import ErrorCodes

from tests.server.apps import h2app
from tests.support.h2client import H2Client
from tests.support.live import serve

TIMEOUT = 0.3  # the server's deadline; every wait below is for an event, bounded by WAIT


async def test_stalled_body_gets_408_and_the_app_a_disconnect() -> None:
    h2app.reset()
    async with (
        serve(h2app.app, timeout_request_body=TIMEOUT) as srv,
        H2Client.connect(srv.port) as client,
    ):
        sid = client.request("POST", "/wait", end=False)
        await client.send_body(sid, b"part of the body")
        response = await client.response(sid)  # nothing more is sent: the deadline passes
        assert response.status == 408
        await h2app.wait_for_record("http.disconnect")
        # The client is told to stop sending (RFC 9113 section 8.1) ...
        await client.until(lambda: response.reset is not None)
        assert response.reset == int(ErrorCodes.NO_ERROR)
        # ... and the connection still serves.
        other = await client.response(client.request("GET", "/"))
        assert (other.status, bytes(other.body)) == (200, b"hello")


async def test_stall_after_the_response_started_resets_the_stream() -> None:
    h2app.reset()
    async with (
        serve(h2app.app, timeout_request_body=TIMEOUT) as srv,
        H2Client.connect(srv.port) as client,
    ):
        sid = client.request("POST", "/respond-then-read", end=False)
        await client.send_body(sid, b"x")
        response = client.responses[sid]
        await client.until(lambda: response.reset is not None)
        assert response.status == 200 and bytes(response.body) == b"started"
        assert response.reset == int(ErrorCodes.CANCEL)
        await h2app.wait_for_record("http.disconnect")


async def test_a_body_that_keeps_coming_is_not_cut() -> None:
    h2app.reset()
    async with (
        serve(h2app.app, timeout_request_body=TIMEOUT) as srv,
        H2Client.connect(srv.port) as client,
    ):
        sid = client.request("POST", "/echo", end=False)
        pieces = [b"a" * 1000, b"b" * 1000, b"c" * 1000]
        for piece in pieces:
            await client.send_body(sid, piece)
        await client.send_body(sid, b"", end=True)
        response = await client.response(sid)
        assert response.status == 200 and bytes(response.body) == b"".join(pieces)
        assert response.reset is None


async def test_a_request_without_body_has_no_deadline() -> None:
    # GET with END_STREAM on its HEADERS: the app may take longer than the body deadline.
    release = h2app.reset()
    async with (
        serve(h2app.app, timeout_request_body=TIMEOUT) as srv,
        H2Client.connect(srv.port) as client,
    ):
        sid = client.request("GET", "/slow")
        await h2app.wait_for_record("slow-started")
        # Nothing can arrive before the app is released: read past the deadline, had there
        # been one (the absence of a 408 is what is tested, so this wait is on the clock).
        with contextlib.suppress(TimeoutError):
            await client.events(within=TIMEOUT * 3)
        assert client.responses[sid].status == 0 and client.responses[sid].reset is None
        release.set()
        response = await client.response(sid)
        assert (response.status, bytes(response.body)) == (200, b"finished")
