"""``--workers N``: one parent process binds the socket and keeps N forked workers alive.

Why ``os.fork`` (and not multiprocessing with 'spawn'): the listening socket and the parsed
``Config`` (which may even hold an app object given to ``server.run``) are simply inherited, with
no pickling and no re-import of the server in a fresh interpreter.  It is safe because the parent
stays single-threaded and never starts an event loop or imports the application: every worker
imports the app itself after the fork, so no loop, thread or connection is shared.

The parent is a plain loop around ``selectors``: signals arrive through ``signal.set_wakeup_fd``,
children report readiness by writing one byte to a pipe, and exits are reaped with ``waitpid``.

* Crashed worker: restarted; consecutive quick crashes back off exponentially (up to
  :data:`MAX_BACKOFF` s) so a crash-looping app doesn't spin.  A worker exiting with status 0
  (``--limit-max-requests``) is replaced at once.  If every worker fails before any was ever
  ready (bad app path, startup failure), the supervisor gives up with that worker's exit code.
  Only the dead worker's own connections are lost (nothing is left to answer them); the shared
  accept queue (below) keeps feeding the other workers meanwhile.
* SIGTERM/SIGINT: forwarded as SIGTERM to every worker (graceful stop); a second one is forwarded
  again, which makes the workers force their exit.  Workers run in their own process group, so a
  terminal's Ctrl+C reaches only the parent and is not delivered twice.
* SIGHUP: rolling restart - start one new worker, wait until it listens, stop one old worker,
  repeat until all were replaced.  No request is lost on the way:

  - One listening socket, bound here and inherited by every worker (not one SO_REUSEPORT
    socket per worker).  Connections wait in that socket's single accept queue, which outlives
    any worker: a worker that stops accepting only closes its own descriptor, and whatever is
    queued is accepted by the others.  With SO_REUSEPORT the kernel would instead hash each
    new connection to one worker's own queue, and the connections queued on a stopping
    worker's socket would be reset when it closes (unless Linux's ``tcp_migrate_req`` is on).
  - A newcomer reports "ready" only once it accepts (``on_started``), and only then is an old
    worker sent SIGTERM, so there is always a worker accepting.
  - The old worker's graceful shutdown (``Server._graceful_shutdown``) finishes the requests it
    has and answers them with ``connection: close``; an idle keep-alive connection is closed
    only if no request arrives within a short grace, and a request that does arrive is answered
    with ``connection: close`` too (``server.protocols.http.SHUTDOWN_IDLE_GRACE``).  Clients
    reconnect and reach a new worker.  WebSockets are closed with 1001 (going away).
* Parent death: each worker watches a pipe whose write end only the parent holds, and stops
  gracefully on EOF, so killing the parent with SIGKILL doesn't leave orphans serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from server.config import Config
from server.errors import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, StartupError, report_error
from server.metrics import MetricsUnavailable, require_prometheus_client
from server.metrics.multiprocess import MultiprocessDir
from server.runtime import Server, lifespan_shutdown_timeout, run_single

logger = logging.getLogger("server.error")

MAX_BACKOFF = 30.0
# A worker that ran at least this long before dying is not part of a crash loop.
STABLE_UPTIME = 10.0
# Extra time (beyond --timeout-graceful-shutdown) before stuck workers get SIGKILL.
KILL_GRACE = 10.0

FORWARDED = (signal.SIGTERM, signal.SIGINT)


@dataclass
class Worker:
    pid: int
    ready_fd: int | None
    started_at: float
    ready: bool = False
    retiring: bool = False  # asked to stop; don't replace it
    extra: bool = False  # rolling-restart newcomer not yet counted among the N


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.workers: dict[int, Worker] = {}
        self.sockets: list[socket.socket] = []
        self.exit_code = EXIT_OK
        self._stopping = 0  # how many stop signals were received
        self._stop_deadline: float | None = None
        self._restart_due: list[float] = []
        self._crashes = 0
        self._ever_ready = False
        self._rolling: list[int] = []  # old pids still to be replaced
        self._newcomer: int | None = None
        self._signals: list[int] = []
        self._sel = selectors.DefaultSelector()
        self._layer_warned = False
        self._wake_r = self._wake_w = self._life_r = self._life_w = -1
        self.metrics_sockets: list[socket.socket] | None = None
        self._metrics_dir: MultiprocessDir | None = None

    # --- public -----------------------------------------------------------------------------------
    def run(self) -> int:
        from server.importer import AppImportError, _add_app_dir

        try:
            # Checked here once: otherwise every worker would report the same bad --app-dir.
            _add_app_dir(self.config.app_dir)
        except AppImportError as exc:
            report_error(str(exc))
            return EXIT_USAGE
        if self.config.metrics_enabled:
            # First of all: the variable must be set before anything imports prometheus_client.
            self._metrics_dir = MultiprocessDir()
            try:
                require_prometheus_client()
            except MetricsUnavailable as exc:
                self._metrics_dir.cleanup()
                report_error(str(exc))
                return EXIT_USAGE
            logger.info("Workers' metrics are merged from %s", self._metrics_dir.path)
        try:
            return self._run()
        finally:
            if self._metrics_dir is not None:
                self._metrics_dir.cleanup()

    def _run(self) -> int:
        try:
            self._bind()
        except StartupError as exc:
            report_error(str(exc))
            return exc.exit_code
        self._wake_r, self._wake_w = os.pipe()
        self._life_r, self._life_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        handled = (*FORWARDED, signal.SIGHUP, signal.SIGCHLD)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        logger.info("Supervisor [%d] starting %d workers", os.getpid(), self.config.workers)
        try:
            for _ in range(self.config.workers):
                self._spawn()
            self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_wakeup)
            for fd in (self._wake_r, self._wake_w, self._life_r, self._life_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            for sock in self.sockets + (self.metrics_sockets or []):
                sock.close()
            if self.config.uds is not None and self.config.fd is None:
                with contextlib.suppress(OSError):
                    os.unlink(self.config.uds)
            logger.info("Supervisor [%d] finished", os.getpid())
        return self.exit_code

    # --- parent loop ----------------------------------------------------------------------------
    def _bind(self) -> None:
        from server.sockets import bind_sockets, describe_address

        self.sockets = bind_sockets(self.config)
        for sock in self.sockets:
            logger.info("Supervisor listening on %s", describe_address(sock, self.config.is_ssl))
        if self.config.metrics_port is not None:
            from server.sockets import bind_metrics_socket

            # Shared like the main socket: any worker answers a scrape with every worker's
            # values (merged from the multiprocess files).
            try:
                self.metrics_sockets = [bind_metrics_socket(self.config)]
            except StartupError:
                for sock in self.sockets:
                    sock.close()
                raise

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only record it: the wakeup fd interrupts select() and the loop does the work.
        self._signals.append(signum)

    def _loop(self) -> None:
        while True:
            self._handle_signals()
            self._reap()
            if self._stopping and not self.workers:
                return
            now = time.monotonic()
            if not self._stopping:
                due = [t for t in self._restart_due if t <= now]
                if due:
                    self._restart_due = [t for t in self._restart_due if t > now]
                    for _ in due:
                        self._spawn()
                self._advance_rolling()
            elif self._stop_deadline is not None and now >= self._stop_deadline:
                for pid in list(self.workers):
                    logger.warning("Worker [%d] did not stop in time: killing it", pid)
                    _kill(pid, signal.SIGKILL)
                self._stop_deadline = None
            for key, _ in self._sel.select(self._timeout(now)):
                if key.fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._wake_r, 512):
                            pass
                else:
                    self._on_ready_pipe(key.fd, key.data)

    def _timeout(self, now: float) -> float | None:
        deadlines = [*self._restart_due]
        if self._stop_deadline is not None:
            deadlines.append(self._stop_deadline)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in FORWARDED:
                name = signal.Signals(sig).name
                if not self._stopping:
                    logger.info("Received %s: stopping %d workers", name, len(self.workers))
                else:
                    logger.warning("Received %s again: forcing workers to exit", name)
                self._stop()
            elif sig == signal.SIGHUP and not self._stopping:
                if self._rolling or self._newcomer is not None:
                    logger.info("Received SIGHUP: a rolling restart is already in progress")
                    continue
                self._rolling = [w.pid for w in self.workers.values() if not w.retiring]
                logger.info("Received SIGHUP: rolling restart of %d workers", len(self._rolling))
            # SIGCHLD needs nothing here: _reap() runs on every iteration.

    def _stop(self) -> None:
        """Graceful stop of every worker; called again, it makes them force their exit."""
        self._stopping += 1
        if self._stopping == 2:
            self.exit_code = self.exit_code or EXIT_RUNTIME  # same as a forced single process
        if self._stopping == 1:
            # A worker may spend the graceful timeout draining connections and then up to
            # the lifespan shutdown timeout in the app's shutdown handler.
            self._stop_deadline = (
                time.monotonic()
                + self.config.timeout_graceful_shutdown
                + lifespan_shutdown_timeout(self.config)
                + KILL_GRACE
            )
        self._restart_due.clear()
        self._rolling.clear()
        for worker in self.workers.values():
            worker.retiring = True
            _kill(worker.pid, signal.SIGTERM)

    def _advance_rolling(self) -> None:
        while self._rolling and self._rolling[0] not in self.workers:
            self._rolling.pop(0)  # died meanwhile; the normal restart path replaced it
        if self._rolling and self._newcomer is None:
            self._newcomer = self._spawn(extra=True)

    def _on_ready_pipe(self, fd: int, pid: int) -> None:
        try:
            # b"1", then an optional warning the worker could only decide once the app was
            # imported (one write of less than PIPE_BUF bytes: it arrives whole).
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        self._sel.unregister(fd)
        os.close(fd)
        worker = self.workers.get(pid)
        if worker is None:
            return
        worker.ready_fd = None
        if not data:
            return  # exited before listening; _reap() deals with it
        worker.ready = True
        self._ever_ready = True
        logger.info("Worker [%d] ready", pid)
        if len(data) > 1 and not self._layer_warned:
            self._layer_warned = True  # every worker finds the same settings: say it once
            logger.warning("%s", data[1:].decode(errors="replace"))
        if pid == self._newcomer:
            worker.extra = False
            self._newcomer = None
            while self._rolling:
                old = self.workers.get(self._rolling.pop(0))
                if old is not None:
                    logger.info("Rolling restart: stopping old worker [%d]", old.pid)
                    old.retiring = True
                    _kill(old.pid, signal.SIGTERM)
                    break
            if not self._rolling:
                logger.info("Rolling restart complete")

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            if self._metrics_dir is not None:
                self._metrics_dir.worker_exited(pid)  # its live gauges leave the sums
            if worker.ready_fd is not None:
                self._sel.unregister(worker.ready_fd)
                os.close(worker.ready_fd)
            self._on_exit(worker, status)

    def _on_exit(self, worker: Worker, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        how = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        if worker.retiring or self._stopping:
            logger.info("Worker [%d] stopped (%s)", worker.pid, how)
            # A worker that failed its own shutdown (lifespan shutdown.failed, forced) or had to
            # be SIGKILLed makes the whole stop unclean, as it would for a single process.  A
            # worker killed by our SIGTERM before it installed its handlers (still importing)
            # stopped as asked.
            if self._stopping and (code > 0 or code == -signal.SIGKILL):
                self.exit_code = self.exit_code or EXIT_RUNTIME
            return
        if worker.pid == self._newcomer:
            self._newcomer = None
            self._rolling.clear()
            logger.error("Rolling restart aborted: new worker [%d] died (%s)", worker.pid, how)
            if not worker.ready:
                return  # it was an extra process; the old workers keep serving
        if not worker.ready and not self._ever_ready:
            # Nothing has ever worked: restarting would only repeat the same failure.
            logger.error("Worker [%d] failed to start (%s); stopping", worker.pid, how)
            self.exit_code = code if code > 0 else EXIT_RUNTIME
            if not self._stopping:
                self._stop()
            return
        if code == 0:
            logger.info("Worker [%d] exited (%s); starting a new one", worker.pid, how)
            self._restart_due.append(time.monotonic())
            return
        uptime = time.monotonic() - worker.started_at
        self._crashes = 1 if uptime >= STABLE_UPTIME else self._crashes + 1
        delay = 0.0 if self._crashes == 1 else min(MAX_BACKOFF, 0.25 * 2 ** (self._crashes - 2))
        logger.warning("Worker [%d] died (%s); restarting in %.2f s", worker.pid, how, delay)
        self._restart_due.append(time.monotonic() + delay)

    # --- forking ---------------------------------------------------------------------------------
    def _spawn(self, *, extra: bool = False) -> int:
        ready_r, ready_w = os.pipe()
        # Buffered log lines would otherwise be written twice (once per process).
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child (covered by subprocess tests)
            code = EXIT_RUNTIME
            try:
                os.close(ready_r)
                code = self._child(ready_w)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(ready_w)
        self.workers[pid] = Worker(pid, ready_r, time.monotonic(), extra=extra)
        self._sel.register(ready_r, selectors.EVENT_READ, pid)
        logger.info("Started worker [%d]", pid)
        return pid

    def _child(self, ready_w: int) -> int:
        # Own process group: a terminal's Ctrl+C goes to the parent only, which forwards it.
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self._sel.close()
        for fd in (self._wake_r, self._wake_w, self._life_w):
            os.close(fd)
        for other in self.workers.values():
            if other.ready_fd is not None:
                os.close(other.ready_fd)
        life_r = self._life_r

        def watch_parent(server: Server) -> None:
            # From the very start of the worker's loop, not only once it listens: a parent
            # killed while the app's lifespan startup hangs must not leave an orphan behind.
            import asyncio

            loop = asyncio.get_running_loop()

            def parent_gone() -> None:
                # Readable means EOF here: only the parent ever held the write end.
                loop.remove_reader(life_r)
                logger.warning("Supervisor went away: shutting down")
                server.should_exit = True

            loop.add_reader(life_r, parent_gone)

        def started(server: Server) -> None:
            try:
                warning = in_memory_layer_warning(self.config.workers)
                os.write(ready_w, b"1" + (warning or "").encode()[:4000])
            finally:
                os.close(ready_w)

        return run_single(
            self.config,
            self.sockets,
            on_started=started,
            on_loop=watch_parent,
            metrics_sockets=self.metrics_sockets,
        )


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def in_memory_layer_warning(workers: int) -> str | None:
    """One line when workers can't see each other's channel layer messages, else None.

    Called in a worker once its app is imported: only then are the Django settings known for
    sure (the tutorial's ``asgi.py`` sets ``DJANGO_SETTINGS_MODULE`` itself, with
    ``os.environ.setdefault``, then ``get_asgi_application()`` configures them).  Settings the
    app has not configured are not read: importing a settings module here would run project
    code inside the serving event loop.  ``channels`` is never imported: the check reads
    ``CHANNEL_LAYERS`` and ``INSTALLED_APPS`` only.
    """
    django_conf = sys.modules.get("django.conf")
    if workers < 2 or django_conf is None or not django_conf.settings.configured:
        return None
    try:
        layers = getattr(django_conf.settings, "CHANNEL_LAYERS", None)
        installed = list(getattr(django_conf.settings, "INSTALLED_APPS", []))
    except Exception as exc:  # settings that fail to read are the app's to report
        logger.debug("Could not read Django settings: %s", exc)
        return None
    if not isinstance(layers, dict) or not layers.get("default"):
        if "channels" not in installed and "daphne" not in installed:
            return None
        problem = "CHANNEL_LAYERS is not set"
    else:
        default = layers["default"]
        backend = str(default.get("BACKEND", "")) if isinstance(default, dict) else ""
        if "inmemory" not in backend.lower().replace("_", ""):
            return None
        problem = f"the default channel layer is {backend}"
    return (
        f"--workers {workers}: {problem}, so each worker has its own layer and messages do not "
        "reach clients of other workers; use channels.layers.redis.RedisChannelLayer in "
        "CHANNEL_LAYERS."
    )
