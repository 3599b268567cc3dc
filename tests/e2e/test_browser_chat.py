"""The chat example end to end: ``python -m server`` in a subprocess, headless Chromium pages.

Chromium is the Debian build at /usr/bin/chromium driven by Playwright (no browser download).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import websockets
from playwright.sync_api import Browser, Page, expect, sync_playwright
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e import chat_server, redis_server, stop_process

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's own timeouts (ms): long enough for a loaded 2-core machine, short enough to fail.
UI_TIMEOUT_MS = 20_000
expect.set_options(timeout=UI_TIMEOUT_MS)  # expect() has its own 5 s default otherwise


def _chromium() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium executable (looked for /usr/bin/chromium and chromium on PATH)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _room() -> str:
    return f"room-{uuid.uuid4().hex[:12]}"


def _open_room(browser: Browser, base_url: str, room: str) -> Page:
    """A page in its own browser context (separate cookies, like a separate visitor)."""
    context = browser.new_context()
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{base_url}/chat/{room}/")
    # The status turns "open" only after the server's welcome frame, i.e. after the consumer
    # joined the room's group: messages sent from now on must reach this page.
    expect(page.locator("#status")).to_have_attribute("data-state", "open")
    return page


def _say(page: Page, text: str) -> None:
    page.fill("#chat-message-input", text)
    page.press("#chat-message-input", "Enter")


def _close_all(pages: list[Page]) -> None:
    for page in pages:
        page.context.close()


def test_message_reaches_both_pages(browser: Browser, tmp_path: Path) -> None:
    room = _room()
    with chat_server(tmp_path) as server:
        pages = [_open_room(browser, server.base_url, room) for _ in range(2)]
        try:
            _say(pages[0], "hello from page one")
            for page in pages:
                expect(page.locator("#chat-log li")).to_have_text(["hello from page one"])

            # Markup typed by a user is shown as text, never interpreted.
            _say(pages[1], "<b>bold?</b>")
            for page in pages:
                expect(page.locator("#chat-log li")).to_have_text(
                    ["hello from page one", "<b>bold?</b>"]
                )
                assert page.locator("#chat-log b").count() == 0

            shot = tmp_path / "chat-room.png"
            pages[0].screenshot(path=str(shot))
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        finally:
            _close_all(pages)


def test_other_rooms_do_not_hear_it(browser: Browser, tmp_path: Path) -> None:
    with chat_server(tmp_path) as server:
        here, elsewhere = _open_room(browser, server.base_url, _room()), None
        try:
            elsewhere = _open_room(browser, server.base_url, _room())
            _say(here, "only for this room")
            expect(here.locator("#chat-log li")).to_have_text(["only for this room"])
            # Then a message in the other room: once it shows there, the first one would have
            # arrived before it (same server, same order), so its absence is meaningful.
            _say(elsewhere, "marker")
            expect(elsewhere.locator("#chat-log li")).to_have_text(["marker"])
            # Same argument the other way round: "marker" would precede "second" here.
            _say(here, "second")
            expect(here.locator("#chat-log li")).to_have_text(["only for this room", "second"])
        finally:
            _close_all([p for p in (here, elsewhere) if p is not None])


def test_index_form_leads_to_room(browser: Browser, tmp_path: Path) -> None:
    with chat_server(tmp_path) as server:
        context = browser.new_context()
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page = context.new_page()
            page.goto(server.base_url + "/")
            page.fill("#room-name-input", "lobby")
            page.press("#room-name-input", "Enter")
            page.wait_for_url(f"{server.base_url}/chat/lobby/")
            expect(page.locator("h1")).to_contain_text("lobby")
            expect(page.locator("#status")).to_have_attribute("data-state", "open")
        finally:
            context.close()

        # Without a browser: bad names get a clear 400 or 404, never a server error.
        with httpx.Client(base_url=server.base_url) as client:
            bad = client.get("/chat/", params={"room": "no spaces/or slashes"})
            assert bad.status_code == 400
            assert "not a valid room name" in bad.text
            assert client.get("/chat/" + "x" * 65 + "/").status_code == 404


async def _ws_close_code(url: str, origin: str, frame: str | bytes) -> int | None:
    async with websockets.connect(url, origin=websockets.Origin(origin)) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert welcome["type"] == "welcome"
        await ws.send(frame)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 20)
        return ws.close_code


def test_bad_websocket_input_gets_close_codes(tmp_path: Path) -> None:
    async def scenario(base: str) -> None:
        url = base.replace("http://", "ws://") + "/ws/chat/lobby/"
        assert await _ws_close_code(url, base, b"\x00binary") == 1003
        assert await _ws_close_code(url, base, "not json") == 1007
        assert await _ws_close_code(url, base, json.dumps({"message": 42})) == 1007
        assert await _ws_close_code(url, base, json.dumps({"message": "x" * 2001})) == 1009
        # A page from another site may not open a socket to the chat (Origin check).
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url, origin=websockets.Origin("http://evil.example")):
                pass
        assert refused.value.response.status_code == 403

    # Playwright's sync API keeps an event loop running in this thread (the module's browser
    # fixture may be alive), so the client side runs its own loop in a worker thread.
    with chat_server(tmp_path) as server, ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario(server.base_url)).result()


@pytest.mark.redis
def test_two_workers_share_rooms_through_redis(browser: Browser, tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; the multi-worker case needs a real Redis")
    room = _room()
    with (
        redis_server(tmp_path) as redis_url,
        chat_server(tmp_path, args=["--workers", "2"], env={"REDIS_URL": redis_url}) as server,
    ):
        pages: list[Page] = []
        workers: set[str] = set()
        try:
            # Each page has its own WebSocket connection, which the kernel hands to either
            # worker; open pages until both workers hold some (bounded).
            while len(pages) < 4 or (len(workers) < 2 and len(pages) < 12):
                page = _open_room(browser, server.base_url, room)
                pages.append(page)
                worker = page.locator("#status").get_attribute("data-worker")
                assert worker, "welcome frame without a worker id"
                workers.add(worker)
            assert len(workers) == 2, (
                f"all {len(pages)} WebSockets landed on worker(s) {sorted(workers)}; "
                "the supervisor does not spread connections"
            )
            _say(pages[-1], "across workers")
            for page in pages:
                expect(page.locator("#chat-log li")).to_have_text(["across workers"])
        finally:
            _close_all(pages)


def test_graceful_shutdown_closes_pages_with_1001(browser: Browser, tmp_path: Path) -> None:
    with chat_server(tmp_path) as server:
        page = _open_room(browser, server.base_url, _room())
        try:
            # SIGTERM while the socket is open: the server must say "going away" (RFC 6455
            # §7.4.1 code 1001) rather than drop the connection, and exit 0 (checked on exit).
            assert stop_process(server.proc) == 0, server.log_tail()
            expect(page.locator("#status")).to_have_attribute("data-state", "closed")
            expect(page.locator("#status")).to_contain_text("code 1001")
        finally:
            page.context.close()
