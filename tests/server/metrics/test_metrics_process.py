"""Every server and layer metric changes as real traffic runs (real process, real sockets)."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.server.apps.proc import ServerProcess
from tests.support.metrics import Samples, poll, scrape, total, value

pytestmark = pytest.mark.slow

METRICS_RE = r"Metrics on (http://\S+)/metrics"

SERVER_FAMILIES = (
    "channels_server_connections_open",
    "channels_server_received_bytes_total",
    "channels_server_sent_bytes_total",
    "channels_server_requests_total",
    "channels_server_request_duration_seconds_count",
    "channels_server_request_duration_seconds_sum",
    "channels_server_websocket_messages_total",
    "channels_server_websocket_closes_total",
    "channels_server_refused_total",
    "channels_server_event_loop_lag_seconds",
)
LAYER_FAMILIES = (
    "channels_layer_messages_sent_total",
    "channels_layer_messages_received_total",
    "channels_layer_channel_full_total",
    "channels_layer_group_send_deliveries_total",
    "channels_layer_queued_messages",
    "channels_layer_groups",
)


def start(*extra: str) -> tuple[ServerProcess, str, str]:
    proc = ServerProcess(
        [
            "tests.server.apps.metered:app",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--limit-request-line",
            "200",
            "--limit-concurrency",
            "3",
            "--no-access-log",
            *extra,
        ],
        env={"DJANGO_SETTINGS_MODULE": "tests.server.apps.inmemory_settings"},
    )
    base = proc.wait_listening()
    metrics = proc.wait_for(METRICS_RE).group(1) + "/metrics"
    return proc, base, metrics


@pytest.fixture
def single() -> Iterator[tuple[ServerProcess, str, str]]:
    proc, base, metrics = start()
    try:
        yield proc, base, metrics
    finally:
        proc.signal()
        proc.wait_exit()
        proc.close()


def drive_traffic(base: str, metrics: str, settle: object, *, concurrency: bool = True) -> int:
    """HTTP, WebSocket, layer and refused traffic; ``settle(check)`` waits until a scrape
    shows what was just done (immediately in one process, within a second with workers).
    Returns how many extra ``GET /`` were answered 200 while probing the concurrency limit."""
    assert callable(settle)
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with httpx.Client(base_url=base) as client:
        for _ in range(3):
            assert client.get("/").text == "ok"
        assert client.post("/", content=b"x" * 1000).status_code == 200
        assert client.get("/layer").text == "layer ok"
    with ws_connect(f"ws://{host}:{port}/ws") as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        settle(lambda s: value(s, "channels_server_connections_open", protocol="websocket") == 1)
        ws.send("close:4001")
        with pytest.raises(Exception, match="4001"):
            ws.recv()
    with ws_connect(f"ws://{host}:{port}/ws") as ws:
        ws.send("bye")
        assert ws.recv() == "bye"
    # --limit-request-line 200 -> 414.
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 414 ")
    if not concurrency:
        return 0
    # --limit-concurrency 3: idle connections, then requests until one gets a 503.
    idle = [socket.create_connection((host, int(port))) for _ in range(12)]
    answered = 0
    try:
        settle(lambda s: value(s, "channels_server_connections_open", protocol="http") >= 12)
        for _ in range(20):
            with socket.create_connection((host, int(port))) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status = raw.recv(100)[:13]
            if status == b"HTTP/1.1 503 ":
                break
            assert status == b"HTTP/1.1 200 "
            answered += 1
        else:
            raise AssertionError("no request was refused by --limit-concurrency")
    finally:
        for sock in idle:
            sock.close()
    return answered


def assert_all_changed(before: Samples, after: Samples, *, concurrency: bool = True) -> None:
    for name in SERVER_FAMILIES[1:-1] + LAYER_FAMILIES:
        assert total(after, name) > total(before, name), name
    assert value(after, "channels_server_requests_total", method="GET", status="2xx") >= 4
    assert value(after, "channels_server_requests_total", method="POST", status="2xx") == 1
    # Handshakes are requests too (101); refused ones are counted by limit.
    assert value(after, "channels_server_requests_total", method="GET", status="1xx") == 2
    assert value(after, "channels_server_refused_total", limit="request_line") == 1
    if concurrency:
        assert value(after, "channels_server_refused_total", limit="concurrency") == 1
    assert value(after, "channels_server_websocket_messages_total", direction="in") == 3
    assert value(after, "channels_server_websocket_messages_total", direction="out") == 2
    assert value(after, "channels_server_websocket_closes_total", code="4xxx") == 1
    assert value(after, "channels_server_websocket_closes_total", code="1000") == 1
    assert total(after, "channels_server_received_bytes_total", protocol="websocket") > 0
    assert total(after, "channels_server_sent_bytes_total", protocol="websocket") > 0
    assert value(after, "channels_server_request_duration_seconds_count") >= 5
    assert value(after, "channels_server_request_duration_seconds_bucket", le="+Inf") == value(
        after, "channels_server_request_duration_seconds_count"
    )
    layer = {"layer": "default", "backend": "InMemoryChannelLayer"}
    assert value(after, "channels_layer_channel_full_total", **layer) >= 1
    assert value(after, "channels_layer_groups", **layer) >= 1
    assert value(after, "channels_layer_queued_messages", **layer) >= 100  # the full channel


def holds(check: object, *args: object, **kwargs: object) -> bool:
    """``check(*args)`` passed (for polling until a scrape shows everything)."""
    assert callable(check)
    try:
        check(*args, **kwargs)
    except AssertionError:
        return False
    return True


def test_every_metric_changes_single_process(single: tuple[ServerProcess, str, str]) -> None:
    _proc, base, metrics = single
    before = scrape(metrics)
    for name in SERVER_FAMILIES:
        assert any(n == name for n, _ in before) or "total" in name, name

    def settle(check: object) -> None:
        poll(metrics, check, timeout=5)  # type: ignore[arg-type]

    extra = drive_traffic(base, metrics, settle)
    after = poll(
        metrics,
        lambda s: (
            value(s, "channels_server_connections_open", protocol="http") == 0
            and value(s, "channels_server_connections_open", protocol="websocket") == 0
            and holds(assert_all_changed, before, s)
        ),
    )
    assert_all_changed(before, after)
    assert value(after, "channels_server_requests_total", method="GET", status="2xx") == 4 + extra
    # The process metrics of prometheus_client come along in one process.
    assert value(after, "process_open_fds") > 0


def test_event_loop_lag_shows_a_blocked_loop(single: tuple[ServerProcess, str, str]) -> None:
    _proc, base, metrics = single
    # The app blocks its loop for 0.6 s (longer than the 0.5 s tick): the next tick is late.
    httpx.get(base + "/block?0.6", timeout=10)
    samples = poll(metrics, lambda s: value(s, "channels_server_event_loop_lag_seconds") >= 0.1)
    assert value(samples, "channels_server_event_loop_lag_seconds") < 5


def test_metrics_path_on_the_main_listener() -> None:
    proc, base, metrics = start("--metrics-path", "/internal/metrics")
    try:
        httpx.get(base + "/")
        samples = scrape(base + "/internal/metrics")
        assert value(samples, "channels_server_requests_total", method="GET", status="2xx") >= 1
        # The separate listener answers only /metrics.
        assert httpx.get(metrics.removesuffix("/metrics") + "/other").status_code == 404
        assert httpx.post(metrics).status_code == 405
    finally:
        proc.signal()
        proc.wait_exit()
        proc.close()


def test_workers_share_one_exposition() -> None:
    proc, base, metrics = start("--workers", "2")
    try:
        before = scrape(metrics)

        def settle(check: object) -> None:
            poll(metrics, check)  # type: ignore[arg-type]

        # Not the concurrency probe: which worker accepts a connection is the kernel's choice,
        # so no number of idle connections surely fills both (the single-process test has it).
        extra = drive_traffic(base, metrics, settle, concurrency=False)
        # Separate connections, so both workers take part; every one is counted once.
        for _ in range(20):
            assert httpx.get(base + "/").text == "ok"
        after = poll(
            metrics,
            lambda s: (
                value(s, "channels_server_requests_total", method="GET", status="2xx") == 24 + extra
                and holds(assert_all_changed, before, s, concurrency=False)
            ),
        )
        assert_all_changed(before, after, concurrency=False)
        # The worst worker's loop lag (livemax) shows a blocked loop too.
        httpx.get(base + "/block?0.6", timeout=10)
        poll(metrics, lambda s: value(s, "channels_server_event_loop_lag_seconds") >= 0.1)
    finally:
        proc.signal()
        assert proc.wait_exit() == 0
        proc.close()
    # The supervisor removed the multiprocess directory it had created.
    directory = proc.wait_for(r"metrics are merged from (\S+)", seen=True).group(1)
    assert directory.startswith(tempfile.gettempdir())
    assert not os.path.exists(directory)
