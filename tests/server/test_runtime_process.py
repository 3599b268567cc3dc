"""``python -m server`` as a real process: serving, signals, graceful and forced shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.apps.proc import ServerProcess

pytestmark = pytest.mark.slow

APP = "tests.server.apps.basic:app"


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def address(base: str) -> tuple[str, int]:
    host, port = base.rsplit("/", 1)[1].rsplit(":", 1)
    return host, int(port)


def open_wait(base: str) -> socket.socket:
    """GET /wait on a raw socket and return once the first chunk arrived."""
    sock = socket.create_connection(address(base), timeout=20)
    sock.sendall(b"GET /wait HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    received = b""
    while b"begin\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    return sock


def read_rest(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


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


def test_sigint_is_graceful_too() -> None:
    proc = ServerProcess([APP, "--port", "0", "--lifespan", "off"])
    try:
        base = proc.wait_listening()
        assert httpx.get(base + "/x").status_code == 200
        proc.signal(signal.SIGINT)
        assert proc.wait_exit() == 0
        assert "Traceback" not in proc.output
    finally:
        proc.close()


def test_sigterm_lets_the_in_flight_response_finish(pipe: tuple[int, int]) -> None:
    r, w = pipe
    proc = ServerProcess([APP, "--port", "0"], env={"BLOCK_FD": str(r)}, pass_fds=[r])
    try:
        base = proc.wait_listening()
        with open_wait(base) as sock:
            proc.signal(signal.SIGTERM)
            proc.wait_for("Stopped accepting; waiting")
            # The listener is closed while the response is still in flight.
            with pytest.raises(OSError):
                socket.create_connection(address(base), timeout=5).close()
            assert proc.proc.poll() is None
            os.write(w, b"x")  # let the app finish its response
            rest = read_rest(sock)
        assert b"end\n" in rest
        assert rest.endswith(b"0\r\n\r\n")  # the chunked body was terminated properly
        assert proc.wait_exit() == 0
        assert "LIFESPAN SHUTDOWN" in proc.output
    finally:
        proc.close()


def test_second_signal_forces_exit(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    proc = ServerProcess(
        [APP, "--port", "0", "--timeout-graceful-shutdown", "60"],
        env={"BLOCK_FD": str(r)},
        pass_fds=[r],
    )
    try:
        base = proc.wait_listening()
        with open_wait(base) as sock:
            proc.signal(signal.SIGTERM)
            proc.wait_for("shutting down gracefully")
            proc.signal(signal.SIGTERM)
            proc.wait_for("forcing exit")
            # Far sooner than the 60 s grace period; the response is cut short.
            assert proc.wait_exit(timeout=20) == 1
            assert b"0\r\n\r\n" not in read_rest(sock)
    finally:
        proc.close()


def test_graceful_timeout_expires(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    proc = ServerProcess(
        [APP, "--port", "0", "--timeout-graceful-shutdown", "0.5"],
        env={"BLOCK_FD": str(r)},
        pass_fds=[r],
    )
    try:
        base = proc.wait_listening()
        with open_wait(base):
            proc.signal(signal.SIGTERM)
            proc.wait_for("Closing 1 connection")
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
