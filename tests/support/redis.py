"""Real ``redis-server`` processes for tests, on free loopback ports, in temp dirs.

``RedisServer`` starts a server and waits for its "Ready to accept connections" log line (an
event, not a sleep).  Without persistence it runs with ``--save "" --appendonly no``; with
``persistent=True`` it uses an fsync-always append-only file so ``restart()`` keeps the data.

Fixtures: ``redis_server`` (one fresh server per test), ``redis_server_factory`` (start more,
e.g. two shards), ``redis_sentinel`` (a Sentinel monitoring ``redis_server`` as
"mymaster").  Both skip with a clear reason when the ``redis-server`` binary is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REDIS_BINARY = shutil.which("redis-server")
READY_MARKER = "Ready to accept connections"


def server_argv(port: int, directory: Path) -> list[str]:
    """A foreground ``redis-server`` on 127.0.0.1:``port``, files in ``directory``, logging to
    stdout (which :func:`launch` reads), no RDB snapshots; callers add the rest."""
    assert REDIS_BINARY is not None
    return [
        REDIS_BINARY,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--logfile", "",
        "--daemonize", "no",
        "--save", "",
    ]  # fmt: skip


def launch(
    argv: list[str], directory: Path, log: list[str], marker: str = READY_MARKER
) -> tuple[subprocess.Popen[str], bool]:
    """Start a ``redis-server`` and read its log into ``log`` until ``marker`` (an event, not a
    sleep); the process, and whether the marker came (if not, the process has exited)."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=directory
    )
    assert process.stdout is not None
    for line in process.stdout:
        log.append(line)
        if marker in line:
            return process, True
    process.wait()
    return process, False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *,
        persistent: bool = False,
        unix_socket: bool = False,
        tls: bool = False,
    ) -> None:
        if REDIS_BINARY is None:
            pytest.skip("redis-server binary not found on PATH; install redis to run this test")
        self.directory = directory
        self.persistent = persistent
        # Unix socket paths are limited to ~107 bytes: keep it short, outside tmp_path.
        self.socket_path: str | None = None
        if unix_socket:
            self.socket_path = str(Path(tempfile.mkdtemp(prefix="rs", dir="/tmp")) / "r.sock")
        self.port = _free_port()
        # With ``tls``: a second, TLS-only port with a throwaway self-signed certificate
        # (the plain port stays for the test's own inspection, e.g. ``client_count``).
        self.tls_port: int | None = None
        if tls:
            self.tls_port = _free_port()
            from tests.support.certs import make_self_signed

            make_self_signed(directory)
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self.start()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        argv = server_argv(self.port, self.directory)
        if self.socket_path is not None:
            argv += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        if self.tls_port is not None:
            argv += [
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(self.directory / "cert.pem"),
                "--tls-key-file", str(self.directory / "key.pem"),
                "--tls-ca-cert-file", str(self.directory / "cert.pem"),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        if self.persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        return argv

    def start(self) -> None:
        for _attempt in range(3):
            # Block on the server's own log until it is ready (or dies, e.g. port taken).
            self.process, ready = launch(self._argv(), self.directory, self.log)
            if ready:
                return
            if any("Address already in use" in line for line in self.log):
                self.port = _free_port()
                continue
            break
        raise RuntimeError("redis-server failed to start:\n" + "".join(self.log[-20:]))

    def stop(self) -> None:
        """SIGTERM and wait: redis writes its append-only file before exiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        if self.socket_path is not None:
            Path(self.socket_path).unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client_count(self) -> int:
        """Connected clients other than the one asking (``CLIENT LIST``)."""
        with socket.create_connection((self.host, self.port), timeout=5) as s:
            s.sendall(b"CLIENT LIST\r\n")
            data = b""
            while b"\r\n" not in data:
                data += s.recv(65536)
            header, rest = data.split(b"\r\n", 1)
            size = int(header[1:])  # bulk string reply: $<size>\r\n<body>\r\n
            while len(rest) < size + 2:
                rest += s.recv(65536)
        lines = [line for line in rest[:size].decode().splitlines() if line.strip()]
        return len(lines) - 1  # minus this connection


class RedisSentinel:
    """A ``redis-server --sentinel`` monitoring ``master`` as service ``service``."""

    def __init__(self, directory: Path, master: RedisServer, service: str = "mymaster") -> None:
        if REDIS_BINARY is None:
            pytest.skip("redis-server binary not found on PATH; install redis to run this test")
        self.service = service
        self.port = _free_port()
        config = directory / "sentinel.conf"  # sentinel rewrites its config: must be writable
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {directory}\n"
            f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
        )
        self.log: list[str] = []
        # Started once it monitors the master (an event).
        self.process, ready = launch(
            [REDIS_BINARY, str(config), "--sentinel"],
            directory,
            self.log,
            marker=f"+monitor master {service}",
        )
        if ready:
            return
        raise RuntimeError("redis sentinel failed to start:\n" + "".join(self.log[-20:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.communicate(timeout=10)
        elif self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def redis_sentinel(tmp_path: Path, redis_server: RedisServer) -> Iterator[RedisSentinel]:
    directory = tmp_path / "sentinel"
    directory.mkdir()
    sentinel = RedisSentinel(directory, redis_server)
    yield sentinel
    sentinel.stop()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    servers: list[RedisServer] = []

    def make(
        *, persistent: bool = False, unix_socket: bool = False, tls: bool = False
    ) -> RedisServer:
        directory = tmp_path / f"redis{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, persistent=persistent, unix_socket=unix_socket, tls=tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
        if server.socket_path is not None:
            shutil.rmtree(Path(server.socket_path).parent, ignore_errors=True)


@pytest.fixture
def redis_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()
