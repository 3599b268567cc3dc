"""Other HTTP/2 implementations against ``python -m server``: nghttp and h2load (Debian's
nghttp2-client, installed by .ci/run), over h2c and over TLS with ALPN.  Load is bounded by
request count, on 127.0.0.1 only."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.apps.proc import ServerProcess
from tests.support.certs import make_self_signed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("h2load") is None or shutil.which("nghttp") is None,
        reason="nghttp2-client (h2load, nghttp) is not installed",
    ),
]


def _serve(args: list[str]) -> Iterator[tuple[ServerProcess, str]]:
    proc = ServerProcess(["tests.server.apps.h2app:app", "--port", "0", "--no-access-log", *args])
    try:
        url = proc.wait_listening()
        yield proc, url
    finally:
        proc.signal()
        try:
            proc.wait_exit()
        finally:
            proc.close()


@pytest.fixture
def plain() -> Iterator[tuple[ServerProcess, str]]:
    yield from _serve([])


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    cert, key = make_self_signed(tmp_path)
    yield from _serve(["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)])


def _run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_nghttp_h2c_prior_knowledge(plain: tuple[ServerProcess, str]) -> None:
    _proc, url = plain
    out = _run(["nghttp", "-v", url + "/"])
    assert "hello" in out
    assert ":status: 200" in out
    assert "SETTINGS_ENABLE_CONNECT_PROTOCOL(0x08):1" in out


def test_nghttp_upload_over_tls(tls: tuple[ServerProcess, str], tmp_path: Path) -> None:
    _proc, url = tls
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"0123456789abcdef" * 20000)  # 320 KB: several stream windows
    out = _run(["nghttp", "-d", str(upload), url + "/echo"])
    assert out == upload.read_text()


@pytest.mark.parametrize("server", ["plain", "tls"])
def test_h2load_bounded_run(server: str, request: pytest.FixtureRequest) -> None:
    _proc, url = request.getfixturevalue(server)
    out = _run(["h2load", "-n", "2000", "-c", "4", "-m", "10", url + "/"])
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "h2" in out  # "Application protocol: h2" (or h2c)
