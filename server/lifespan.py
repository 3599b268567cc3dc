"""The ASGI lifespan protocol (startup/shutdown events around the server's lifetime).

Modes (``--lifespan``):

* ``off``  - never call the app with a lifespan scope.
* ``auto`` - call it; an app that raises (or returns) before sending any lifespan message is
  taken as not supporting lifespan: logged at INFO and serving continues (ASGI lifespan spec:
  "the server must continue but not send any lifespan events").
* ``on``   - lifespan is required: any such failure is fatal.

In every mode ``lifespan.startup.failed`` is fatal: the server logs the app's message and exits
non-zero.  Startup has no time limit (slow startups are legitimate) but is reported every
:data:`STARTUP_WARN_INTERVAL` seconds, and a signal still stops the server meanwhile; an app
that raises after ``startup.complete`` is logged and the server keeps serving.

The scope carries ``state``, the very dict that becomes ``ServerState.lifespan_state``,
so what the app stores there is shallow-copied into each connection scope.
"""

from __future__ import annotations

import asyncio
import logging

from server.config import Config
from server.importer import DEBUG_HINT
from server.state import ServerState
from server.types import ASGIApp, LifespanReceiveEvent, LifespanScope, SendEvent

logger = logging.getLogger("server.error")

# How long abort() waits for the lifespan task to honour its cancellation.
ABORT_WAIT = 2.0
# How often a startup that has not finished yet is reported.
STARTUP_WARN_INTERVAL = 30.0


class LifespanFailure(Exception):
    """Startup did not complete; ``str()`` is the one-line reason shown to the user."""


class Lifespan:
    def __init__(self, config: Config, app: ASGIApp, state: ServerState) -> None:
        self.mode = config.lifespan
        self.app = app
        self.state = state
        self.supported = self.mode != "off"
        self.startup_failed = False
        self.shutdown_failed = False
        self.failure_message = ""
        self._queue: asyncio.Queue[LifespanReceiveEvent] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_started = False
        self._shutdown_done = asyncio.Event()
        self._sent_any = False
        self._task: asyncio.Task[None] | None = None

    # --- what the runtime calls --------------------------------------------------------------
    async def startup(self) -> None:
        """Run startup; raise :class:`LifespanFailure` if the app reported or caused a failure."""
        if not self.supported:
            return
        logger.info("Waiting for application startup.")
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._queue.put_nowait({"type": "lifespan.startup"})
        await self._wait_for_startup()
        if self.startup_failed:
            raise LifespanFailure(self.failure_message)
        if self.supported:
            logger.info("Application startup complete.")

    async def _wait_for_startup(self) -> None:
        # Startup is deliberately not timed out (migrations, model loading... may be slow) and
        # a signal still stops the server meanwhile; but an app that never answers must not
        # leave the operator staring at a silent process.
        done = asyncio.ensure_future(self._startup_done.wait())
        waited = 0.0
        try:
            while True:
                finished, _ = await asyncio.wait({done}, timeout=STARTUP_WARN_INTERVAL)
                if finished:
                    return
                waited += STARTUP_WARN_INTERVAL
                logger.warning(
                    "Still waiting for application startup after %.0f s: the application has "
                    "not sent lifespan.startup.complete (or failed).",
                    waited,
                )
        finally:
            done.cancel()

    async def shutdown(self, wait_seconds: float | None) -> None:
        """Run shutdown, waiting at most ``wait_seconds`` for the app to answer."""
        task = self._task
        if not self.supported or task is None or task.done():
            await self.abort()
            return
        logger.info("Waiting for application shutdown.")
        self._shutdown_started = True
        self._queue.put_nowait({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._shutdown_done.wait(), wait_seconds)
        except TimeoutError:
            logger.warning("Application shutdown did not finish within %s seconds.", wait_seconds)
            self.shutdown_failed = True
        if self.shutdown_failed:
            if self.failure_message:
                logger.error("Application shutdown failed: %s", self.failure_message)
        else:
            logger.info("Application shutdown complete.")
        await self.abort()

    async def abort(self) -> None:
        """Cancel the lifespan task if it is still running (forced exit, or after shutdown)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # Bounded: an app that swallows the cancellation must not keep the process alive.
            await asyncio.wait({task}, timeout=ABORT_WAIT)
            if not task.done():
                logger.warning("Lifespan task ignored cancellation; abandoning it.")

    # --- the app side ------------------------------------------------------------------------
    async def _run(self) -> None:
        scope: LifespanScope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state.lifespan_state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._app_ended(exc)
        else:
            self._app_ended(None)
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    def _app_ended(self, exc: Exception | None) -> None:
        if not self._startup_done.is_set():
            if self.mode == "auto" and not self._sent_any:
                # Not an error: many apps (e.g. Channels' ProtocolTypeRouter without a "lifespan"
                # entry) reject scope types they don't know.
                self.supported = False
                reason = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
                logger.info("ASGI 'lifespan' protocol appears unsupported%s.", reason)
                return
            self.startup_failed = True
            # The runtime turns failure_message into the one error line the user sees; the
            # traceback is only for --log-level debug (same habit as a failing import).
            hint = (
                " (if the application does not support lifespan, use --lifespan auto or off)"
                if not self._sent_any
                else ""
            )
            if exc is None:
                self.failure_message = f"the application returned before completing startup{hint}"
            else:
                self.failure_message = (
                    f"exception in lifespan startup: {type(exc).__name__}: {exc}{hint} {DEBUG_HINT}"
                )
                logger.debug("Exception in 'lifespan' protocol", exc_info=exc)
            return
        if exc is not None:
            logger.error("Exception in 'lifespan' protocol", exc_info=exc)
            if self._shutdown_started and not self._shutdown_done.is_set():
                self.shutdown_failed = True
                self.failure_message = f"{type(exc).__name__}: {exc}"

    async def receive(self) -> LifespanReceiveEvent:
        return await self._queue.get()

    async def send(self, message: SendEvent) -> None:
        kind = message.get("type")
        self._sent_any = True
        if kind == "lifespan.startup.complete":
            self._check(not self._startup_done.is_set(), kind)
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._check(not self._startup_done.is_set(), kind)
            self.startup_failed = True
            self.failure_message = str(message.get("message", "")) or "no message given"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._check(self._shutdown_started and not self._shutdown_done.is_set(), kind)
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._check(self._shutdown_started and not self._shutdown_done.is_set(), kind)
            self.shutdown_failed = True
            self.failure_message = str(message.get("message", "")) or "no message given"
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} in the lifespan protocol")

    @staticmethod
    def _check(ok: bool, kind: str) -> None:
        if not ok:
            raise RuntimeError(f"ASGI message {kind!r} sent at the wrong time")
