"""``--reload``: restart the server process when watched files change (development only).

The parent binds the listening socket once and never imports the application; it runs the
server in a child process (``python -m server.reload FD``) that inherits the socket, and
watches the file system with ``watchfiles``.  On a change it stops the child gracefully
(SIGTERM, then SIGKILL after the usual grace) and starts a new one on the same socket, so
clients see no "connection refused" while the code reloads.  A child that dies (a syntax
error just saved) is restarted by the next change.

Which changes count: a file whose name matches a ``--reload-include`` glob (default ``*.py``)
and neither it nor a directory on its path (below the watched directory) matches a
``--reload-exclude`` glob (default: dot-files and dot-directories, ``*~``, ``*.py[cod]``,
``__pycache__``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from server.config import Config
from server.errors import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, StartupError, report_error
from server.runtime import lifespan_shutdown_timeout
from server.sockets import bind_sockets, describe_address

logger = logging.getLogger("server.error")

# How often (ms) the watcher checks for a stop request between file events.
WATCH_POLL_MS = 200
# Extra time (beyond --timeout-graceful-shutdown and the lifespan shutdown) before SIGKILL.
KILL_GRACE = 5.0


def watch_dirs(config: Config) -> list[Path]:
    dirs = list(config.reload_dirs) or [os.getcwd(), *([config.app_dir] if config.app_dir else [])]
    return sorted({Path(d).resolve() for d in dirs})


def make_filter(
    roots: Iterable[Path], includes: Iterable[str], excludes: Iterable[str]
) -> Callable[[Any, str], bool]:
    roots = tuple(roots)
    includes = tuple(includes)
    excludes = tuple(excludes)

    def accept(change: Any, path: str) -> bool:
        p = Path(path)
        parts: tuple[str, ...] = (p.name,)
        for root in roots:
            if p.is_relative_to(root):
                parts = p.relative_to(root).parts
                break
        if any(fnmatch.fnmatch(part, glob) for part in parts for glob in excludes):
            return False
        return any(fnmatch.fnmatch(p.name, glob) for glob in includes)

    return accept


class Reloader:
    def __init__(self, config: Config, sockets: list[socket.socket], dirs: list[Path]) -> None:
        self.config = config
        self.sockets = sockets
        self.dirs = dirs
        self.stop = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        import watchfiles

        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        accept = make_filter(self.dirs, self.config.reload_includes, self.config.reload_excludes)
        logger.info(
            "Reloader [%d] watching %s for %s",
            os.getpid(),
            ", ".join(str(d) for d in self.dirs),
            ", ".join(self.config.reload_includes),
        )
        try:
            self._start_child()
            for changes in watchfiles.watch(
                *self.dirs,
                watch_filter=accept,
                stop_event=self.stop,
                rust_timeout=WATCH_POLL_MS,
                raise_interrupt=False,
                debounce=400,
                step=50,
            ):
                names = sorted({os.path.relpath(path) for _, path in changes})
                logger.warning("Detected changes in %s: restarting", ", ".join(names))
                self._stop_child()
                if self.stop.is_set():
                    break
                self._start_child()
        finally:
            self._stop_child()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self.sockets:
                sock.close()
            if self.config.uds is not None and self.config.fd is None:
                with contextlib.suppress(OSError):
                    os.unlink(self.config.uds)
            logger.info("Reloader [%d] finished", os.getpid())
        return EXIT_OK

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop.set()

    def _start_child(self) -> None:
        read_fd, write_fd = os.pipe()
        fds = [sock.fileno() for sock in self.sockets]
        child_config = self.config.replace(reload=False, fd=None, env_file=None)
        payload = pickle.dumps((child_config, fds))
        sys.stdout.flush()
        sys.stderr.flush()
        self.child = subprocess.Popen(
            [sys.executable, "-m", "server.reload", str(read_fd)],
            pass_fds=(read_fd, *fds),
            # Own process group: a terminal's Ctrl+C reaches only us, and we stop the child
            # once (a second signal would force it).
            process_group=0,
        )
        os.close(read_fd)
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
        logger.info("Started server process [%d]", self.child.pid)

    def _stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            grace = (
                self.config.timeout_graceful_shutdown
                + lifespan_shutdown_timeout(self.config)
                + KILL_GRACE
            )
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                logger.warning("Server process [%d] did not stop in time: killing it", child.pid)
                child.kill()
                child.wait()
        else:
            logger.warning(
                "Server process [%d] had exited (code %d); waiting for changes",
                child.pid,
                child.returncode,
            )


def run_with_reload(config: Config) -> int:
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        report_error("--reload needs watchfiles (pip install 'channels-server[reload]')")
        return EXIT_USAGE
    dirs = watch_dirs(config)
    for directory in dirs:
        if not directory.is_dir():
            report_error(f"--reload-dir {directory}: not a directory")
            return EXIT_USAGE
    try:
        sockets = bind_sockets(config)
    except StartupError as exc:
        report_error(str(exc))
        return exc.exit_code
    for sock in sockets:
        logger.info("Reloader listening on %s", describe_address(sock, config.is_ssl))
    return Reloader(config, sockets, dirs).run()


def child_main(config_fd: int) -> int:
    """The server process started by :class:`Reloader` (configuration read from a pipe)."""
    from server.logging_setup import configure_logging
    from server.runtime import run_single

    with os.fdopen(config_fd, "rb") as pipe:
        config, fds = pickle.loads(pipe.read())
    assert isinstance(config, Config)
    sockets = [socket.socket(fileno=fd) for fd in fds]
    configure_logging(config)
    return run_single(config, sockets)


if __name__ == "__main__":  # pragma: no cover - runs in the child process
    sys.exit(child_main(int(sys.argv[1])) if len(sys.argv) == 2 else EXIT_RUNTIME)
