"""One server process: pick the loop, bind, run lifespan, serve, shut down gracefully.

Life of :meth:`Server.serve`:

1. Resolve the app, build the TLS context (before anything is bound, so bad options fail fast).
2. Lifespan startup.  ``startup.failed`` (or any failure with ``--lifespan on``) stops here.
3. Bind (TCP host/port, ``--uds`` or an inherited ``--fd``) unless sockets were handed in by
   the supervisor; start accepting; log ``Listening on ...``; set :attr:`Server.started`.
4. Wait for ``should_exit`` (SIGTERM/SIGINT, :meth:`Server.shutdown`, ``--limit-max-requests``).
5. Graceful shutdown: stop accepting, ``shutdown()`` every connection, wait until idle for at
   most ``--timeout-graceful-shutdown`` seconds, abort what is left, cancel leftover tasks,
   lifespan shutdown (given at least :data:`LIFESPAN_SHUTDOWN_MIN` s even with a graceful
   timeout of 0).  A second signal (``force_exit``) cuts every one of these waits short.

Exit codes used by :func:`run_config` (and so by the CLI and the supervisor's workers):
0 clean stop, 1 runtime failure (port in use, app raised on import, forced exit, lifespan
shutdown failed),
2 usage/configuration error, 3 application startup failed (lifespan); see :mod:`server.errors`.
Binding and the TLS context live in :mod:`server.sockets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from server.config import Config, ConfigError
from server.errors import (
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STARTUP_FAILED,
    EXIT_USAGE,
    StartupError,
    report_error,
)
from server.gc_threshold import adopt_313_threshold
from server.importer import AppImportError, AppLoadError, load_app
from server.lifespan import Lifespan, LifespanFailure
from server.sockets import (
    bind_sockets,
    create_ssl_context,
    describe_address,
)
from server.state import RequestLimitState, ServerState
from server.types import ASGIApp

if TYPE_CHECKING:
    from server.metrics.service import MetricsService

# Names that moved to server.errors / server.sockets stay importable from here.
__all__ = [
    "EXIT_OK",
    "EXIT_RUNTIME",
    "EXIT_STARTUP_FAILED",
    "EXIT_USAGE",
    "LIFESPAN_SHUTDOWN_MIN",
    "Server",
    "StartupError",
    "ThreadSafeFlag",
    "bind_sockets",
    "create_ssl_context",
    "describe_address",
    "lifespan_shutdown_timeout",
    "loop_factory",
    "report_error",
    "run",
    "run_config",
    "run_single",
]

logger = logging.getLogger("server.error")


HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# --timeout-graceful-shutdown bounds how long connections may drain; the app's own lifespan
# shutdown (closing pools, flushing) still gets at least this long, otherwise "0" would mean
# "never let the app clean up" and every stop would be reported as a failed shutdown.
LIFESPAN_SHUTDOWN_MIN = 5.0


def lifespan_shutdown_timeout(config: Config) -> float:
    return max(config.timeout_graceful_shutdown, LIFESPAN_SHUTDOWN_MIN)


class ThreadSafeFlag:
    """A one-shot flag that can be set from any thread and awaited or waited on.

    ``Server.started`` is one: async tests ``await server.started.wait()``; code running the
    server in a thread (live-server test cases) uses ``server.started.wait_sync(timeout)``.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is already closed
                loop.call_soon_threadsafe(_resolve, fut)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._event.is_set():
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        await fut

    def wait_sync(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# --- event loop --------------------------------------------------------------------------------
def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise StartupError(
                    "--loop uvloop: uvloop is not installed (pip install uvloop)", EXIT_USAGE
                ) from None
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


# --- the server ----------------------------------------------------------------------------------
class Server:
    """Serve one ASGI app in the current process.

    ``serve()`` is a coroutine for embedding (tests, live servers); ``run()`` creates the loop
    chosen by ``--loop`` and returns an exit code.  ``shutdown()`` / ``should_exit = True`` may
    be called from any thread.
    """

    def __init__(self, config: Config, app: ASGIApp | None = None) -> None:
        self.config = config
        self.app = app
        self.state = self._make_state()
        self.started = ThreadSafeFlag()
        self.bound_addresses: list[Any] = []
        # --metrics-port listener bound by the supervisor (None: bind it here if asked for).
        self.metrics_sockets: list[socket.socket] | None = None
        self.metrics: MetricsService | None = None
        self.exit_code = EXIT_OK
        self._should_exit = False
        # A signal forces the exit only when an earlier *signal* asked for the graceful one:
        # a worker already stopping on its own (--limit-max-requests, shutdown()) that then
        # gets the supervisor's SIGTERM must still finish gracefully.
        self._signalled = False
        self._force_exit = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_event: asyncio.Event | None = None
        self._force_event: asyncio.Event | None = None
        self._servers: list[asyncio.Server] = []
        self._owned_uds: str | None = None
        # Called once listening (the supervisor's workers use it to report readiness).
        self.on_started: Callable[[Server], None] | None = None
        # Called from serve() as soon as the loop runs, before the app is imported or started
        # (the supervisor's workers watch for their parent's death from there on).
        self.on_loop: Callable[[Server], None] | None = None

    # --- exit requests (thread-safe) ------------------------------------------------------------
    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value:
            self._wake(self._exit_event)

    @property
    def force_exit(self) -> bool:
        return self._force_exit

    @force_exit.setter
    def force_exit(self, value: bool) -> None:
        self._force_exit = value
        if value:
            self._wake(self._exit_event)
            self._wake(self._force_event)

    def shutdown(self) -> None:
        """Ask for a graceful stop; safe from any thread and before ``serve()`` starts."""
        self.should_exit = True

    def _wake(self, event: asyncio.Event | None) -> None:
        loop = self._loop
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(event.set)

    # --- signals ----------------------------------------------------------------------------------
    def _handle_signal(self, sig: signal.Signals) -> None:
        if self._signalled:
            logger.warning("Received %s again: forcing exit.", sig.name)
            self.force_exit = True
        else:
            self._signalled = True
            logger.info("Received %s: shutting down gracefully (send again to force).", sig.name)
            self.should_exit = True

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        if threading.current_thread() is not threading.main_thread():
            return []  # embedded in a thread: the host application owns signal handling
        installed = []
        for sig in HANDLED_SIGNALS:
            try:
                loop.add_signal_handler(sig, self._handle_signal, sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                continue
            installed.append(sig)
        return installed

    # --- main coroutine ------------------------------------------------------------------------
    def run(self, sockets: list[socket.socket] | None = None) -> int:
        adopt_313_threshold()  # before the app is imported: its own choice wins
        with asyncio.Runner(loop_factory=loop_factory(self.config.loop)) as runner:
            runner.run(self.serve(sockets))
        return self.exit_code

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        # Events first, loop last: a thread calling shutdown() meanwhile either sees no loop
        # (and the flag check below catches it) or finds the events ready to be set.
        self._exit_event = asyncio.Event()
        self._force_event = asyncio.Event()
        self._loop = loop
        if self._should_exit:
            self._exit_event.set()
        if self._force_exit:
            self._force_event.set()
        if self.on_loop is not None:
            self.on_loop(self)
        config = self.config
        if config.metrics_enabled and self.metrics is None:
            # Before the app is imported: see server.metrics.service.
            from server.metrics import MetricsUnavailable
            from server.metrics.service import MetricsService

            try:
                self.metrics = MetricsService(config, self.state)
            except MetricsUnavailable as exc:
                raise StartupError(str(exc), EXIT_USAGE) from None
        if self.app is None:
            self.app = load_app(config.app, factory=config.factory, app_dir=config.app_dir)
        app = self.app
        if self.metrics is not None:
            app = self.metrics.wrap_app(app)
        ssl_ctx = create_ssl_context(config)
        # Bind before lifespan startup: a port already in use fails fast, without running the
        # app's startup work; connections arriving during startup wait in the backlog.
        socks = sockets if sockets is not None else self._bind()
        owned = sockets is None
        signals = self._install_signal_handlers(loop)
        try:
            lifespan = Lifespan(config, app, self.state)
            if not await self._startup(lifespan):
                return
            if self._should_exit:  # asked to stop while starting up: don't start serving
                await lifespan.shutdown(lifespan_shutdown_timeout(config))
                return
            try:
                await self._start_serving(loop, app, socks, ssl_ctx)
            except BaseException:
                await lifespan.shutdown(lifespan_shutdown_timeout(config))
                raise
            self.started.set()
            if self.on_started is not None:
                self.on_started(self)
            await self._exit_event.wait()
            await self._graceful_shutdown()
            if not self._force_exit:
                await self._lifespan_shutdown(lifespan)
            if self._force_exit:
                self.exit_code = EXIT_RUNTIME
                await lifespan.abort()
            elif lifespan.shutdown_failed:
                self.exit_code = EXIT_RUNTIME
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            for srv in self._servers:
                srv.close()
            if owned:
                for sock in socks:
                    sock.close()
            if self._owned_uds is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._owned_uds)
            if self.metrics is not None:
                self.metrics.stop()
            logger.info("Finished server process [%d]", os.getpid())

    async def _lifespan_shutdown(self, lifespan: Lifespan) -> None:
        """Lifespan shutdown, cut short by a second signal (force_exit)."""
        assert self._force_event is not None
        shutdown = asyncio.ensure_future(lifespan.shutdown(lifespan_shutdown_timeout(self.config)))
        forced = asyncio.ensure_future(self._force_event.wait())
        try:
            await asyncio.wait({shutdown, forced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
        if not shutdown.done():
            logger.warning("Application shutdown interrupted: forcing exit.")
            shutdown.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shutdown

    async def _startup(self, lifespan: Lifespan) -> bool:
        """Run lifespan startup unless asked to exit meanwhile; False means "stop now"."""
        assert self._exit_event is not None
        startup = asyncio.ensure_future(lifespan.startup())
        exit_wait = asyncio.ensure_future(self._exit_event.wait())
        try:
            await asyncio.wait({startup, exit_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exit_wait.cancel()
            # Cancelled ourselves (Ctrl+C while the app was still being imported: asyncio's
            # runner cancels the main task): don't let startup carry on behind our back.
            if not startup.done() and not exit_wait.done():
                startup.cancel()
        if not startup.done():
            logger.info("Application startup interrupted: not serving.")
            startup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await startup
            await lifespan.abort()
            return False
        try:
            startup.result()
        except LifespanFailure as exc:
            await lifespan.abort()
            raise StartupError(f"application startup failed: {exc}", EXIT_STARTUP_FAILED) from None
        return True

    def _bind(self) -> list[socket.socket]:
        socks = bind_sockets(self.config)
        if self.config.uds is not None and self.config.fd is None:
            self._owned_uds = self.config.uds
        return socks

    async def _start_serving(
        self,
        loop: asyncio.AbstractEventLoop,
        app: ASGIApp,
        socks: list[socket.socket],
        ssl_ctx: ssl.SSLContext | None,
    ) -> None:
        from server.protocols.http import HttpProtocol

        config, state = self.config, self.state

        def factory() -> asyncio.Protocol:
            return HttpProtocol(config, app, state, loop)

        for sock in socks:
            if sock.family == socket.AF_UNIX:
                srv = await loop.create_unix_server(
                    factory, sock=sock, ssl=ssl_ctx, backlog=config.backlog
                )
            else:
                srv = await loop.create_server(
                    factory, sock=sock, ssl=ssl_ctx, backlog=config.backlog
                )
            self._servers.append(srv)
            self.bound_addresses.append(sock.getsockname())
            logger.info(
                "Listening on %s (process %d)",
                describe_address(sock, ssl_ctx is not None),
                os.getpid(),
            )
        if self.metrics is not None:
            await self.metrics.start(loop, self.metrics_sockets)

    def _make_state(self) -> ServerState:
        limit = self.config.limit_max_requests
        if limit is None:
            return ServerState()
        # Jitter spreads the recycling of workers started together so they don't all restart
        # at the same moment.
        threshold = limit + random.randint(0, self.config.limit_max_requests_jitter)

        def reached() -> None:
            logger.info("Served %d requests (limit %d): shutting down.", threshold, threshold)
            self.should_exit = True

        return RequestLimitState(threshold, reached)

    async def _graceful_shutdown(self) -> None:
        assert self._force_event is not None
        state, timeout = self.state, self.config.timeout_graceful_shutdown
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        state.shutting_down = True
        for srv in self._servers:
            srv.close()  # stop accepting first, so nothing new arrives while we drain
        for conn in list(state.connections):
            try:
                conn.shutdown()
            except Exception:
                logger.exception("Error while shutting down connection %r", conn)
        if state.connections and not self._force_exit:
            logger.info(
                "Stopped accepting; waiting up to %s s for %d connection(s) to finish.",
                timeout,
                len(state.connections),
            )
            idle = asyncio.ensure_future(state.wait_idle())
            forced = asyncio.ensure_future(self._force_event.wait())
            await asyncio.wait({idle, forced}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            forced.cancel()
        if state.connections:
            logger.warning("Closing %d connection(s) still open.", len(state.connections))
            for conn in list(state.connections):
                conn.abort()
        tasks = [t for t in state.tasks if not t.done()]
        # The connections are gone, but their apps may still be handling the disconnect they
        # were just given (a consumer leaving its groups): let them finish within what is left
        # of the grace time (at most --application-close-timeout) before cancelling them.
        grace = min(deadline - loop.time(), self.config.application_close_timeout)
        if tasks and grace > 0 and not self._force_exit:
            finished = asyncio.ensure_future(asyncio.wait(tasks))
            forced = asyncio.ensure_future(self._force_event.wait())
            await asyncio.wait(
                {finished, forced}, timeout=grace, return_when=asyncio.FIRST_COMPLETED
            )
            finished.cancel()
            forced.cancel()
            tasks = [t for t in tasks if not t.done()]
        if tasks:
            logger.warning("Cancelling %d application task(s) still running.", len(tasks))
            for task in tasks:
                task.cancel()
            # Cancelled tasks normally end within one loop iteration; one that catches the
            # cancellation gets a bounded moment, cut short by a (further) forcing signal.
            all_done = asyncio.ensure_future(asyncio.wait(tasks))
            waiters: set[asyncio.Future[Any]] = {all_done}
            if not self._force_exit:
                waiters.add(asyncio.ensure_future(self._force_event.wait()))
            await asyncio.wait(
                waiters, timeout=max(1.0, min(timeout, 5.0)), return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
        for srv in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(srv.wait_closed(), 1.0)


# --- entry points ------------------------------------------------------------------------------
def run_config(config: Config) -> int:
    """Run according to ``config`` (one process or a supervisor); return the exit code."""
    if config.workers > 1:
        from server.supervisor import Supervisor

        return Supervisor(config).run()
    return run_single(config)


def run_single(
    config: Config,
    sockets: list[socket.socket] | None = None,
    on_started: Callable[[Server], None] | None = None,
    on_loop: Callable[[Server], None] | None = None,
    metrics_sockets: list[socket.socket] | None = None,
) -> int:
    server = Server(config)
    server.on_started = on_started
    server.on_loop = on_loop
    server.metrics_sockets = metrics_sockets
    try:
        return server.run(sockets)
    except StartupError as exc:
        report_error(str(exc))
        return exc.exit_code
    except AppImportError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    except AppLoadError as exc:
        report_error(str(exc))
        return EXIT_RUNTIME
    except ConfigError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:  # a signal before the loop had its handlers installed
        return EXIT_RUNTIME


def run(app: Any, **options: Any) -> None:
    """``server.run("myproject.asgi:application", port=9000)``: serve until stopped.

    Options are :class:`~server.config.Config` fields.  A bad option raises ``ConfigError``;
    any other failure prints one line on stderr and raises ``SystemExit`` with its exit code.
    """
    from server.logging_setup import configure_logging

    config = Config(app=app, **options)
    if config.env_file:
        from server.envfile import load_env_file

        for key, value in load_env_file(config.env_file).items():
            os.environ.setdefault(key, value)  # for the application; options are given here
    configure_logging(config)
    if config.reload:
        from server.reload import run_with_reload

        code = run_with_reload(config)
    else:
        code = run_config(config)
    if code:
        raise SystemExit(code)
