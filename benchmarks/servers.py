"""The servers under test and how each one is started (one worker, access log off, loopback).

Every server runs the very same app modules from ``benchmarks/apps``.  Ours runs from the
project's interpreter with this repository on ``PYTHONPATH`` (so ``import channels`` is ours); the
peers run from ``benchmarks/.venv-peers`` whose ``channels`` is upstream Channels, with only the
apps directory on the path.  ``/info`` is checked before measuring to prove which is which.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procs

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
APPS = BENCH_DIR / "apps"
PEERS_VENV = BENCH_DIR / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"

Argv = Callable[[str, int], list[str]]
# (app import string, port, certificate, key) -> command line serving TLS (h2 through ALPN).
TlsArgv = Callable[[str, int, Path, Path], list[str]]


@dataclass(frozen=True)
class ServerSpec:
    name: str
    label: str
    argv: Argv  # (app import string, port) -> command line
    ours: bool = False  # runs from the project interpreter with this repo's channels
    bare: bool = False  # workload F: not an ASGI server, ignores the app
    workers_flag: str | None = None  # how to ask for N worker processes, if it can
    tls: TlsArgv | None = None  # how it serves HTTPS (workload H2-TLS), if it can


# Extra command-line arguments for our server (``run --ours-args``); later options win.
OURS_EXTRA: list[str] = []


def _ours(app: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "server",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        *OURS_EXTRA,
    ]


def _uvicorn(http: str, ws: str) -> Argv:
    def argv(app: str, port: int) -> list[str]:
        return [
            str(PEERS_PYTHON),
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            http,
            "--ws",
            ws,
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    return argv


def _daphne(app: str, port: int) -> list[str]:
    # Daphne writes no access log unless --access-log is given; -v 0 silences the rest.
    return [str(PEERS_PYTHON), "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]


def _hypercorn(app: str, port: int) -> list[str]:
    # No access log unless --access-logfile is given.
    return [
        str(PEERS_PYTHON),
        "-m",
        "hypercorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        "uvloop",
        "--log-level",
        "warning",
        app,
    ]


def _granian(app: str, port: int) -> list[str]:
    return [
        str(PEERS_VENV / "bin" / "granian"),
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
        app,
    ]


def _ours_tls(app: str, port: int, cert: Path, key: Path) -> list[str]:
    return [*_ours(app, port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]


def _daphne_tls(app: str, port: int, cert: Path, key: Path) -> list[str]:
    # Daphne serves TLS through a Twisted endpoint; HTTP/2 is negotiated by ALPN when Twisted's
    # http2 extra (h2, priority) and tls extra (pyOpenSSL, service-identity) are installed.
    endpoint = f"ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    return [str(PEERS_PYTHON), "-m", "daphne", "-e", endpoint, "-v", "0", app]


def _hypercorn_tls(app: str, port: int, cert: Path, key: Path) -> list[str]:
    return [*_hypercorn(app, port), "--certfile", str(cert), "--keyfile", str(key)]


def _granian_tls(app: str, port: int, cert: Path, key: Path) -> list[str]:
    return [*_granian(app, port), "--ssl-certificate", str(cert), "--ssl-keyfile", str(key)]


def _ours_metrics(app: str, port: int) -> list[str]:
    # Metrics on (not scraped: the cost measured is the hot path's, not the exposition's).
    return [*_ours(app, port), "--metrics-port", "0"]


def _bare(app: str, port: int) -> list[str]:
    return [sys.executable, str(APPS / "bench_bare.py"), "--host", "127.0.0.1", "--port", str(port)]


SERVERS: dict[str, ServerSpec] = {
    s.name: s
    for s in (
        ServerSpec(
            "ours",
            "channels-server (ours)",
            _ours,
            ours=True,
            workers_flag="--workers",
            tls=_ours_tls,
        ),
        ServerSpec("ours-metrics", "channels-server, metrics on", _ours_metrics, ours=True),
        ServerSpec(
            "uvicorn-httptools",
            "uvicorn httptools+websockets",
            _uvicorn("httptools", "websockets"),
            workers_flag="--workers",
        ),
        ServerSpec("uvicorn-h11", "uvicorn h11+wsproto", _uvicorn("h11", "wsproto")),
        ServerSpec("daphne", "daphne + Channels", _daphne, tls=_daphne_tls),
        ServerSpec("hypercorn", "hypercorn (uvloop)", _hypercorn, tls=_hypercorn_tls),
        ServerSpec("granian", "granian ASGI", _granian, tls=_granian_tls),
        ServerSpec("bare-uvloop", "bare uvloop Protocol (F)", _bare, ours=True, bare=True),
    )
}
PEER_NAMES = ("uvicorn-httptools", "uvicorn-h11", "daphne", "hypercorn", "granian")


def environment(spec: ServerSpec, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DJANGO"))}
    path = [str(APPS)]
    if spec.ours:
        # This repository first, so `import channels` / `import server` resolve to ours.
        path.insert(0, str(REPO))
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


@dataclass
class Running:
    spec: ServerSpec
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    info: dict[str, object]

    @property
    def pid(self) -> int:
        return self.proc.pid


def http_get(
    port: int, path: str, timeout: float = 10.0, cafile: Path | None = None
) -> tuple[int, bytes, str]:
    """(status, body, Server header) of one GET on 127.0.0.1:port (HTTPS trusting ``cafile``
    when given)."""
    conn: http.client.HTTPConnection
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("server", "")
    finally:
        conn.close()


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


@contextmanager
def running(
    spec: ServerSpec,
    app: str,
    *,
    core: int | None,
    log_dir: Path,
    tag: str,
    env: dict[str, str] | None = None,
    django: bool = False,
    startup_timeout: float = 30.0,
    workers: int = 1,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Running]:
    """Start ``spec`` serving ``app`` on a free port, check it answers, yield, always stop it.
    ``tls``: (certificate, key) to serve HTTPS with."""
    port = procs.free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{tag}-{spec.name}.log"
    if tls is not None:
        if spec.tls is None:
            raise ValueError(f"{spec.name} is not run with TLS here")
        argv = spec.tls(app, port, *tls)
    else:
        argv = spec.argv(app, port)
    if workers > 1:
        if spec.workers_flag is None:
            raise ValueError(f"{spec.name} is not run with several workers here")
        argv += [spec.workers_flag, str(workers)]
    with log_path.open("wb") as log:
        proc = procs.spawn(argv, cwd=APPS, env=environment(spec, env or {}), log=log, core=core)
    try:
        try:
            procs.wait_listening(proc, port, startup_timeout)
            info: dict[str, object] = {}
            if django and not spec.bare:
                status, body, server_header = http_get(port, "/info")
                if status != 200:
                    raise RuntimeError(f"/info answered {status}")
                info = json.loads(body)
                _check_stack(spec, info)
            else:
                cafile = tls[0] if tls is not None else None
                status, _, server_header = http_get(port, "/", cafile=cafile)
                if status != 200:
                    raise RuntimeError(f"GET / answered {status}")
            # Which server really answered (recorded with the results).
            info["server_header"] = server_header
        except (RuntimeError, OSError, ValueError) as exc:
            tail = log_tail(log_path)
            raise RuntimeError(
                f"{spec.name} failed to start: {exc}" + (f"\n{tail}" if tail else "")
            ) from exc
        yield Running(spec, port, proc, log_path, info)
    finally:
        procs.stop(proc)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 (``openssl`` CLI), for workload H2-TLS."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "bench-cert.pem", directory / "bench-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _check_stack(spec: ServerSpec, info: dict[str, object]) -> None:
    """Refuse to measure if the app picked up the wrong ``channels`` package."""
    where = Path(str(info.get("channels_file", "")))
    ours = REPO / "channels" in where.parents
    if spec.ours and not ours:
        raise RuntimeError(f"expected this repository's channels, app imported {where}")
    if not spec.ours and (ours or PEERS_VENV not in where.parents):
        raise RuntimeError(f"expected upstream channels from the peers venv, app imported {where}")
