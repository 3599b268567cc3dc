"""Headless Chromium against our WebSocket server: its real handshake (several extension
parameters, permessage-deflate) and close codes in both directions."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.types import Message, Receive, Scope, Send
from tests.support.live import serve

pytestmark = pytest.mark.slow


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class Recorder:
    def __init__(self) -> None:
        self.headers: list[dict[bytes, bytes]] = []
        self.disconnects: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.headers.append(dict(scope["headers"]))
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message)
                return
            if message.get("text") == "close me":
                await send({"type": "websocket.close", "code": 4002, "reason": "server says"})
                continue
            await send(
                {
                    "type": "websocket.send",
                    "text": message.get("text"),
                    "bytes": message.get("bytes"),
                }
            )


@pytest.fixture
def live_server() -> Iterator[tuple[str, Recorder]]:
    """Our server on its own loop in a thread (Playwright's sync API owns this thread)."""
    app = Recorder()
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    url: list[str] = []
    loop = asyncio.new_event_loop()

    async def main() -> None:
        async with serve(app, ws_per_message_deflate=True, ws_ping_interval=None) as srv:
            url.append(srv.ws_url)
            stop.append(asyncio.Event())
            ready.set()
            await stop[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield url[0], app
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(15)
        loop.close()


SCRIPT = """async (url) => {
  const open = (path) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url + path);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("ws error"));
  });
  const next = (ws) => new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
  const closed = (ws) => new Promise((resolve) => {
    ws.onclose = (e) => resolve([e.code, e.reason, e.wasClean]);
  });
  const out = {};
  const ws = await open("/echo");
  out.extensions = ws.extensions;
  const big = "compress me ".repeat(50000);
  for (const text of ["hello", "héllo ✓", big]) {
    const got = next(ws); ws.send(text); out[text.slice(0, 8)] = (await got) === text;
  }
  const bin = new Uint8Array(70000).map((_, i) => i % 251);
  let got = next(ws); ws.send(bin);
  const echoed = new Uint8Array(await got);
  out.binary = echoed.length === bin.length && echoed.every((v, i) => v === bin[i]);
  const done = closed(ws); ws.close(4001, "client says"); out.clientClose = await done;
  const ws2 = await open("/other");
  const done2 = closed(ws2); ws2.send("close me"); out.serverClose = await done2;
  return out;
}"""


def test_chromium_echo_deflate_and_close_codes(live_server: tuple[str, Recorder]) -> None:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium executable")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, app = live_server
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            result: dict[str, Any] = page.evaluate(SCRIPT, url)
        finally:
            browser.close()
    assert "permessage-deflate" in result["extensions"], result
    assert result["hello"] and result["héllo ✓"] and result["compress"], result
    assert result["binary"], result
    # Our reply to a client Close echoes its code (RFC 6455 §5.5.1), not its reason.
    assert result["clientClose"] == [4001, "", True], result
    assert result["serverClose"] == [4002, "server says", True], result
    offer = app.headers[0][b"sec-websocket-extensions"]
    assert b"permessage-deflate" in offer and b"client_max_window_bits" in offer
    codes = sorted((m["code"], m["reason"]) for m in app.disconnects)
    assert codes == [(4001, "client says"), (4002, "server says")], codes  # Chromium echoes both
