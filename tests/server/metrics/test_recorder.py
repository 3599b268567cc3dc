"""The hot-path counters and their Prometheus families (no sockets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.metrics import recorder
from server.metrics.collector import ServerCollector
from server.metrics.recorder import DURATION_BUCKETS, Recorder, close_code_label
from tests.support.metrics import Samples, collect, value


@pytest.fixture
def rec() -> Iterator[Recorder]:
    previous = recorder.active
    recorder.active = Recorder()
    try:
        yield recorder.active
    finally:
        recorder.active = previous


def scrape() -> Samples:
    return collect(ServerCollector())


@pytest.mark.parametrize(
    ("code", "label"),
    [(1000, "1000"), (1006, "1006"), (1015, "1015"), (1016, "other"), (999, "other"),
     (3000, "3xxx"), (3999, "3xxx"), (4000, "4xxx"), (4999, "4xxx"), (5000, "other")],
)  # fmt: skip
def test_close_codes_have_bounded_labels(code: int, label: str) -> None:
    assert close_code_label(code) == label


def test_requests_by_method_and_status_class(rec: Recorder) -> None:
    rec.request("GET", 200, 0.001)
    rec.request("GET", 204, None)
    rec.request("BREW", 418, 0.5)  # unknown method -> "other"
    rec.request("POST", 999, 20.0)  # above every bucket
    s = scrape()
    assert value(s, "channels_server_requests_total", method="GET", status="2xx") == 2
    assert value(s, "channels_server_requests_total", method="other", status="4xx") == 1
    assert value(s, "channels_server_requests_total", method="POST", status="9xx") == 1
    # Only timed requests are observed; buckets are cumulative and le is inclusive.
    assert value(s, "channels_server_request_duration_seconds_count") == 3
    assert value(s, "channels_server_request_duration_seconds_bucket", le="0.001") == 1
    assert value(s, "channels_server_request_duration_seconds_bucket", le="0.5") == 2
    assert value(s, "channels_server_request_duration_seconds_bucket", le="10.0") == 2
    assert value(s, "channels_server_request_duration_seconds_bucket", le="+Inf") == 3
    assert value(s, "channels_server_request_duration_seconds_sum") == pytest.approx(20.501)


def test_refusals_and_closes(rec: Recorder) -> None:
    for status in (503, 413, 414, 431, 400):
        rec.refusal(status)
    rec.ws_closed(4321)
    rec.ws_closed(1000)
    s = scrape()
    for limit in ("concurrency", "request_body", "request_line", "request_headers"):
        assert value(s, "channels_server_refused_total", limit=limit) == 1
    assert value(s, "channels_server_websocket_closes_total", code="4xxx") == 1
    assert value(s, "channels_server_websocket_closes_total", code="1000") == 1


def test_nothing_is_exported_without_an_active_recorder() -> None:
    previous, recorder.active = recorder.active, None
    try:
        assert not any(name.startswith("channels_server_") for name, _ in scrape())
    finally:
        recorder.active = previous


def test_buckets_are_sorted() -> None:
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)


def test_response_is_timed_from_its_start(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "clock", lambda: 1.0)
    rec.response(b"GET", 200, 1.0)  # 0 s: the first bucket, without a bisection
    rec.response(b"GET", 204, 0.0)  # 1 s: le is inclusive
    rec.response(b"BREW", 404, -20.0)  # 21 s, an unknown method
    s = scrape()
    assert value(s, "channels_server_requests_total", method="GET", status="2xx") == 2
    assert value(s, "channels_server_requests_total", method="other", status="4xx") == 1
    assert value(s, "channels_server_request_duration_seconds_bucket", le="0.0005") == 1
    assert value(s, "channels_server_request_duration_seconds_bucket", le="0.5") == 1
    assert value(s, "channels_server_request_duration_seconds_bucket", le="1.0") == 2
    assert value(s, "channels_server_request_duration_seconds_bucket", le="10.0") == 2
    assert value(s, "channels_server_request_duration_seconds_bucket", le="+Inf") == 3
    assert value(s, "channels_server_request_duration_seconds_sum") == 22.0


def test_methods_by_text_and_by_bytes_share_their_counters(rec: Recorder) -> None:
    rec.request("GET", 101)  # a WebSocket handshake
    rec.request(b"GET", 101)
    rec.request("HEAD", 1000)  # out of range: counted, in no real class
    assert rec.requests_by_class() == {("GET", "1xx"): 2, ("HEAD", "0xx"): 1}
