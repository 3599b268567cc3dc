"""``python -m server`` as a real process: serving on TCP, ``--uds`` and ``--fd``, options from
env vars, the access log file, ``server.run()``, ``--limit-max-requests``, and clients that
misbehave (garbage, resets, broken TLS).  Stopping (signals, graceful and forced shutdown) is in
``test_signals.py``."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.server.apps.proc import ServerProcess
from tests.support.processes import address

pytestmark = pytest.mark.slow

APP = "tests.server.apps.basic:app"
WS = "tests.server.apps.lifecycle:echo_ws"


def test_serves_a_request_and_stops_on_sigterm() -> None:
    proc = ServerProcess([APP, "--port", "0"])
    try:
        proc.wait_for("Application startup complete")
        base = proc.wait_listening()
        r = httpx.get(base + "/state")
        assert r.text == "hello from lifespan"
        proc.signal(signal.SIGTERM)
        proc.wait_for("LIFESPAN SHUTDOWN")
        assert proc.wait_exit() == 0
    finally:
        proc.close()


def test_unix_socket_process(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    proc = ServerProcess([APP, "--uds", str(path)])
    try:
        proc.wait_for(f"Listening on unix:{path}")
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
            assert client.get("http://x/uds").text == "ok /uds"
        proc.signal()
        assert proc.wait_exit() == 0
        assert not path.exists()
    finally:
        proc.close()


def test_inherited_fd_process() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        proc = ServerProcess([APP, "--fd", str(sock.fileno())], pass_fds=[sock.fileno()])
        try:
            proc.wait_for(f"Listening on http://127.0.0.1:{port}")
            assert httpx.get(f"http://127.0.0.1:{port}/fd").text == "ok /fd"
            proc.signal()
            assert proc.wait_exit() == 0
        finally:
            proc.close()
    finally:
        sock.close()


def test_limit_max_requests_exits_cleanly() -> None:
    proc = ServerProcess([APP, "--port", "0", "--limit-max-requests", "2"])
    try:
        base = proc.wait_listening()
        with httpx.Client() as client:
            for _ in range(2):
                assert client.get(base + "/pid").status_code == 200
        proc.wait_for(r"Served 2 requests \(limit 2\): shutting down")
        assert proc.wait_exit() == 0
    finally:
        proc.close()


def test_env_vars_configure_the_process() -> None:
    proc = ServerProcess(
        [APP],
        env={
            "CHANNELS_SERVER_PORT": "0",
            "CHANNELS_SERVER_NO_SUCH": "1",
            "CHANNELS_SERVER_LOG_LEVEL": "debug",
        },
    )
    try:
        base = proc.wait_listening()
        assert "unknown environment variable CHANNELS_SERVER_NO_SUCH" in proc.output
        assert httpx.get(base + "/env").status_code == 200
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()


def test_access_log_to_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    proc = ServerProcess([APP, "--port", "0", f"--access-log={log}"])
    try:
        base = proc.wait_listening()
        assert httpx.get(base + "/logged").status_code == 200
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()
    assert "/logged" in log.read_text()


def test_programmatic_run() -> None:
    code = (
        "import server; "
        "server.run('tests.server.apps.basic:app', port=0, lifespan='off', access_log=False)"
    )
    proc = ServerProcess([], python_args=["-c", code])
    try:
        base = proc.wait_listening()
        assert httpx.get(base + "/api").text == "ok /api"
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()


def test_programmatic_run_failure_raises_system_exit() -> None:
    code = "import server; server.run('tests.server.apps.basic:startup_fails', port=0)"
    proc = ServerProcess([], python_args=["-c", code])
    try:
        assert proc.wait_exit() == 3
        assert "application startup failed: database unreachable" in proc.output
        assert "Traceback" not in proc.output
    finally:
        proc.close()


def test_trace_log_level_is_accepted() -> None:
    proc = ServerProcess([APP, "--port", "0", "--log-level", "trace"])
    try:
        base = proc.wait_listening()
        assert httpx.get(base + "/t").status_code == 200
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()


def test_client_misbehaviour_leaves_no_traceback(tmp_path: Path) -> None:
    import ssl

    from tests.support.certs import make_self_signed

    cert, key = make_self_signed(tmp_path)
    plain = ServerProcess([WS, "--port", "0"])
    tls = ServerProcess([WS, "--port", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)])
    try:
        plain_addr = address(plain.wait_listening())
        tls_addr = address(tls.wait_listening())

        def send_and_reset(addr: tuple[str, int], data: bytes, *, wrap: bool = False) -> None:
            sock = socket.create_connection(addr, timeout=10)
            if wrap:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(sock)
            sock.sendall(data)
            # RST instead of FIN: the rudest way a client can leave.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.close()

        upgrade = (
            b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        send_and_reset(plain_addr, b"\x00\xff garbage \r\n\r\n")
        send_and_reset(plain_addr, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\nab")
        send_and_reset(plain_addr, upgrade + b"\x81\xfe\xff")  # truncated frame, then reset
        send_and_reset(tls_addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # plain text to TLS
        send_and_reset(tls_addr, b"\x16\x03\x01\x00\x05hello")  # broken ClientHello
        send_and_reset(tls_addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", wrap=True)
        # A last good request on each: the servers are still healthy after all that.
        assert httpx.get(f"http://{plain_addr[0]}:{plain_addr[1]}/").status_code == 200
        assert httpx.get(f"https://{tls_addr[0]}:{tls_addr[1]}/", verify=False).status_code == 200
        for proc in (plain, tls):
            proc.signal(signal.SIGTERM)
            assert proc.wait_exit(30) == 0, proc.output
            assert "Traceback" not in proc.output
            assert " ERROR " not in proc.output
    finally:
        plain.close()
        tls.close()


def test_limit_max_requests_is_not_overshot_by_a_busy_worker() -> None:
    # One keep-alive client hammering a single worker: the limit must hold per request, not
    # "whenever a periodic check next looks" (which let a busy worker serve thousands more).
    proc = ServerProcess([APP, "--port", "0", "--limit-max-requests", "50", "--no-access-log"])
    try:
        base = proc.wait_listening()
        served = 0
        with httpx.Client(timeout=10) as client:
            for _ in range(2000):  # bounded; far beyond the limit
                try:
                    client.get(base + "/pid")
                except httpx.HTTPError:
                    break  # the worker went away, as it should
                served += 1
        assert proc.wait_exit(30) == 0, proc.output
        match = proc.wait_for(r"Served (\d+) requests \(limit 50\)", seen=True)
        assert int(match.group(1)) == 50
        assert 50 <= served <= 51, served  # at most the request racing the close
    finally:
        proc.close()
