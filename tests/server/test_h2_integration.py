"""HTTP/2 end to end on real sockets: h2c with prior knowledge, the h2 library as a client,
httpx with http2=True, request/response streaming, trailers, HEAD, 100-continue, pathsend."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from h2.errors import ErrorCodes

from tests.server.apps import h2app
from tests.support.h2client import H2Client
from tests.support.live import serve


async def test_h2c_prior_knowledge_get() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        sid = client.request("GET", "/scope?x=1", [("cookie", "a=1"), ("cookie", "b=2")])
        response = await client.response(sid)
        assert response.status == 200
        info = json.loads(response.body)
        assert info["http_version"] == "2"
        assert info["scheme"] == "http"
        assert info["path"] == "/scope"
        assert info["query_string"] == "x=1"
        # :authority becomes the first header, as "host"; cookie crumbs are joined.
        assert info["headers"][0] == ["host", "127.0.0.1"]
        assert ["cookie", "a=1; b=2"] in info["headers"]
        assert "http.response.trailers" in info["extensions"]
        assert response.header(b"date") is not None
        assert response.header(b"server") == b"channels-server"


async def test_many_streams_on_one_connection() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        sids = [client.request("POST", "/echo", body=b"body %d" % i) for i in range(20)]
        for i, sid in enumerate(sids):
            response = await client.response(sid)
            assert response.status == 200
            assert bytes(response.body) == b"body %d" % i


async def test_httpx_http2() -> None:
    async with serve(h2app.app) as srv, httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.get(srv.url + "/")
        assert r.http_version == "HTTP/2"
        assert r.text == "hello"
        r = await client.post(srv.url + "/echo", content=b"x" * 300_000)
        assert r.http_version == "HTTP/2"
        assert r.content == b"x" * 300_000


async def test_http11_still_served_with_http2_on() -> None:
    async with serve(h2app.app) as srv, httpx.AsyncClient() as client:
        r = await client.get(srv.url + "/scope")
        assert r.http_version == "HTTP/1.1"
        assert r.json()["http_version"] == "1.1"


async def test_no_http2_refuses_the_preface() -> None:
    async with serve(h2app.app, http2=False) as srv, H2Client.connect(srv.port) as client:
        client.request("GET", "/")
        await client.wait_closed()
        assert client.goaway is None  # an HTTP/1.1 error answer, not HTTP/2


async def test_trailers_and_head() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        sid = client.request("GET", "/trailers")
        response = await client.response(sid)
        assert bytes(response.body) == b"part1part2"
        assert response.trailers == [(b"x-checksum", b"abc")]
        sid = client.request("HEAD", "/")
        response = await client.response(sid)
        assert response.status == 200
        assert response.body == b""
        assert response.header(b"content-length") == b"5"


async def test_expect_100_continue() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        sid = client.request("POST", "/echo", [("expect", "100-continue")], end=False)
        await client.until(lambda: client.responses[sid].interim == [100])
        client.conn.send_data(sid, b"after continue", end_stream=True)
        client.flush()
        response = await client.response(sid)
        assert bytes(response.body) == b"after continue"


async def test_pathsend(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000  # larger than the 64 KiB initial window
    target = tmp_path / "data.bin"
    target.write_bytes(data)
    async with serve(h2app.app) as srv, httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.get(srv.url + "/file", headers={"x-file": str(target)})
        assert r.content == data
        assert r.headers["content-length"] == str(len(data))


async def test_app_error_is_a_500_and_the_connection_lives_on() -> None:
    async with serve(h2app.app) as srv, H2Client.connect(srv.port) as client:
        sid = client.request("GET", "/boom")
        response = await client.response(sid)
        assert response.status == 500
        sid = client.request("GET", "/")
        assert (await client.response(sid)).status == 200


async def test_head_with_several_body_messages_and_a_short_body() -> None:
    async with serve(h2app.head_chunks) as srv, H2Client.connect(srv.port) as client:
        sid = client.request("HEAD", "/")
        response = await client.response(sid)
        assert response.status == 200 and response.body == b""
        sid = client.request("GET", "/")
        assert bytes((await client.response(sid)).body) == b"abcdef"
        # Content-Length 10 but 5 bytes: the stream is reset, not ended as if complete.
        sid = client.request("GET", "/short")
        response = await client.response(sid)
        assert response.reset == int(ErrorCodes.INTERNAL_ERROR)
        assert not response.ended


async def test_limit_request_body_and_health_check() -> None:
    async with (
        serve(h2app.app, limit_request_body=1000, health_check_path="/healthz") as srv,
        H2Client.connect(srv.port) as client,
    ):
        sid = client.request("GET", "/healthz")
        response = await client.response(sid)
        assert (response.status, bytes(response.body)) == (200, b"OK\n")
        # Declared too large: refused before the app runs.
        sid = client.request("POST", "/echo", [("content-length", "5000")], end=False)
        assert (await client.response(sid)).status == 413
        # Streamed past the limit without a length.
        sid = client.request("POST", "/echo", end=False)
        await client.send_body(sid, b"x" * 2000)
        assert (await client.response(sid)).status == 413
        sid = client.request("POST", "/echo", body=b"y" * 1000)
        assert bytes((await client.response(sid)).body) == b"y" * 1000


async def test_zerocopysend(tmp_path: Path) -> None:
    data = bytes(range(256)) * 400  # 102,400 bytes: more than the initial window
    target = tmp_path / "data.bin"
    target.write_bytes(data)
    async with serve(h2app.zerocopy) as srv, httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.get(srv.url + "/", headers={"x-file": str(target)})
        assert r.content == data[10:1010] + data[2000:]


async def test_limit_concurrency_answers_503() -> None:
    release = h2app.reset()
    async with serve(h2app.app, limit_concurrency=1) as srv, H2Client.connect(srv.port) as client:
        slow = client.request("GET", "/slow")
        await h2app.wait_for_record("slow-started")
        sid = client.request("GET", "/")
        assert (await client.response(sid)).status == 503
        release.set()
        assert (await client.response(slow)).status == 200


async def test_extra_headers_on_h2_responses() -> None:
    async with (
        serve(h2app.app, headers=("X-Frame-Options: DENY",)) as srv,
        H2Client.connect(srv.port) as client,
    ):
        response = await client.response(client.request("GET", "/"))
        assert response.header(b"x-frame-options") == b"DENY"
        assert response.header(b"server") == b"channels-server"
