"""The ASGI lifespan protocol driven directly (no sockets needed)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.config import Config
from server.lifespan import Lifespan, LifespanFailure
from server.state import ServerState
from server.types import Receive, Scope, Send


def make(app: object, mode: str = "auto") -> tuple[Lifespan, ServerState]:
    state = ServerState()
    return Lifespan(Config(app=app, lifespan=mode), app, state), state  # type: ignore[arg-type]


async def full_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "lifespan"
    assert scope["asgi"]["version"] == "3.0"
    events = []
    while True:
        message = await receive()
        events.append(message["type"])
        if message["type"] == "lifespan.startup":
            scope["state"]["db"] = "connected"
            await send({"type": "lifespan.startup.complete"})
        else:
            scope["state"]["events"] = events
            await send({"type": "lifespan.shutdown.complete"})
            return


async def test_startup_and_shutdown_share_state() -> None:
    lifespan, state = make(full_app)
    await lifespan.startup()
    assert state.lifespan_state == {"db": "connected"}
    await lifespan.shutdown(5)
    assert state.lifespan_state["events"] == ["lifespan.startup", "lifespan.shutdown"]
    assert not lifespan.shutdown_failed


async def test_startup_failed_message_is_reported() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    for mode in ("auto", "on"):
        lifespan, _ = make(app, mode)
        with pytest.raises(LifespanFailure, match="no database"):
            await lifespan.startup()
        await lifespan.abort()


async def test_auto_mode_treats_early_exception_as_unsupported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("No application configured for scope type 'lifespan'")

    lifespan, _ = make(app)
    with caplog.at_level(logging.INFO, logger="server.error"):
        await lifespan.startup()
    assert not lifespan.supported
    assert any(
        "unsupported" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records
    )
    await lifespan.shutdown(1)  # nothing to do, must not hang


async def test_auto_mode_treats_early_return_as_unsupported() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return

    lifespan, _ = make(app)
    await lifespan.startup()
    assert not lifespan.supported


async def test_on_mode_makes_exception_fatal() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("nope")

    lifespan, _ = make(app, "on")
    with pytest.raises(LifespanFailure, match="ValueError: nope"):
        await lifespan.startup()


async def test_off_mode_never_calls_the_app() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("called")

    lifespan, _ = make(app, "off")
    await lifespan.startup()
    await lifespan.shutdown(1)


async def test_exception_after_startup_complete_is_not_unsupported() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise RuntimeError("shutdown broke")

    lifespan, _ = make(app)
    await lifespan.startup()
    assert lifespan.supported
    await lifespan.shutdown(5)
    assert lifespan.shutdown_failed


async def test_shutdown_failed_message() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})

    lifespan, _ = make(app)
    await lifespan.startup()
    await lifespan.shutdown(5)
    assert lifespan.shutdown_failed
    assert lifespan.failure_message == "flush failed"


async def test_shutdown_that_never_answers_is_bounded() -> None:
    never = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await never.wait()

    lifespan, _ = make(app)
    await lifespan.startup()
    await lifespan.shutdown(0.05)
    assert lifespan.shutdown_failed


async def test_wrong_message_type_fails_startup() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start"})

    lifespan, _ = make(app, "on")
    with pytest.raises(LifespanFailure, match="Unexpected ASGI message type"):
        await lifespan.startup()
