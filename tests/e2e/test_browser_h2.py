"""The chat example over HTTP/2: ``python -m server`` with a self-signed certificate, headless
Chromium told to accept it (a test-only profile), pages loaded over h2 and the chat WebSocket
over RFC 8441 (extended CONNECT on the page's connection)."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.e2e import (
    CHAT_APP,
    CHAT_DIR,
    HEALTH_PATH,
    REPO_ROOT,
    chat_env,
    free_port,
    log_tail,
    stop_process,
    wait_until,
)
from tests.e2e.test_browser_chat import CHROMIUM_ARGS, UI_TIMEOUT_MS, _chromium
from tests.support.certs import make_self_signed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def h2_browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium executable (looked for /usr/bin/chromium and chromium on PATH)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            # Only this throw-away profile trusts the test's self-signed certificate.
            args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def tls_chat_server(tmp: Path) -> Iterator[tuple[str, Path]]:
    cert, key = make_self_signed(tmp)
    port = free_port()
    log = tmp / f"server-{port}.log"
    command = [
        sys.executable, "-m", "server",
        "--app-dir", str(CHAT_DIR),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--health-check-path", HEALTH_PATH,
        "--ssl-certfile", str(cert),
        "--ssl-keyfile", str(key),
        CHAT_APP,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=chat_env(), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"https://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=str(cert))

    def ready() -> bool:
        try:
            return httpx.get(base + HEALTH_PATH, verify=verify, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, proc, log, "server")
        yield base, log
    finally:
        code = stop_process(proc)
    assert code == 0, f"server exited with {code} after SIGTERM:\n{log_tail(log)}"


def test_chromium_loads_the_chat_over_h2_and_chats(h2_browser: Browser, tmp_path: Path) -> None:
    with tls_chat_server(tmp_path) as (base, log):
        pages = []
        try:
            for _ in range(2):
                context = h2_browser.new_context(ignore_https_errors=True)
                context.set_default_timeout(UI_TIMEOUT_MS)
                page = context.new_page()
                page.goto(f"{base}/chat/h2room/")
                protocol = page.evaluate(
                    "performance.getEntriesByType('navigation')[0].nextHopProtocol"
                )
                assert protocol == "h2"
                expect(page.locator("#status")).to_have_attribute("data-state", "open")
                pages.append(page)
            pages[0].fill("#chat-message-input", "hello over h2")
            pages[0].press("#chat-message-input", "Enter")
            for page in pages:
                expect(page.locator("#chat-log li")).to_have_text(["hello over h2"])
        finally:
            for page in pages:
                page.context.close()
    text = log.read_text(errors="replace")
    assert '"GET /chat/h2room/ HTTP/2" 200' in text
    # Chromium opens the chat WebSocket as an RFC 8441 CONNECT stream on the page's h2
    # connection (it would fall back to HTTP/1.1 without SETTINGS_ENABLE_CONNECT_PROTOCOL).
    assert '"CONNECT /ws/chat/h2room/ HTTP/2" 200' in text, text[-2000:]
    assert "/ws/chat/h2room/ HTTP/1.1" not in text
