"""Mirroring sampled families into prometheus_client's multiprocess files, and merging them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from server.metrics.multiprocess import ENV, Mirror, MultiprocessDir
from tests.support.metrics import parse, value


class Fake:
    """A sampled collector whose numbers the test sets (one per simulated worker)."""

    def __init__(self, n: float) -> None:
        self.n = n

    def collect(self) -> Iterator[Any]:
        counter = CounterMetricFamily("channels_test_events", "events", labels=["kind"])
        counter.add_metric(["a"], self.n)
        yield counter
        yield GaugeMetricFamily("channels_server_connections_open", "open", value=self.n)
        yield GaugeMetricFamily("channels_server_event_loop_lag_seconds", "lag", value=self.n)
        yield HistogramMetricFamily(
            "channels_test_seconds",
            "h",
            buckets=[("0.1", self.n), ("1.0", 2 * self.n), ("+Inf", 3 * self.n)],
            sum_value=self.n,
        )
        yield CounterMetricFamily("other_family", "not ours: not mirrored", value=1)


def mirror_for(pid: int, n: float) -> tuple[Mirror, Fake]:
    registry = CollectorRegistry()
    fake = Fake(n)
    registry.register(fake)  # type: ignore[arg-type]
    return Mirror(registry, values.MultiProcessValue(lambda: pid)), fake


def merged(path: Path) -> dict[Any, float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    return parse(generate_latest(registry).decode())[0]  # type: ignore[return-value]


def test_two_workers_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    one, fake_one = mirror_for(101, 1)
    two, _ = mirror_for(102, 10)
    one.sync()
    two.sync()
    s = merged(tmp_path)
    assert value(s, "channels_test_events_total", kind="a") == 11
    assert value(s, "channels_server_connections_open") == 11  # livesum
    assert value(s, "channels_server_event_loop_lag_seconds") == 10  # livemax
    assert value(s, "channels_test_seconds_bucket", le="0.1") == 11
    assert value(s, "channels_test_seconds_bucket", le="1.0") == 22
    assert value(s, "channels_test_seconds_bucket", le="+Inf") == 33
    assert value(s, "channels_test_seconds_count") == 33
    assert value(s, "channels_test_seconds_sum") == 11
    assert not any(k[0] == "other_family_total" for k in s)

    # A later sync overwrites (absolute values, not increments).
    fake_one.n = 2
    one.sync()
    assert value(merged(tmp_path), "channels_test_events_total", kind="a") == 12

    # A dead worker's counters stay in the sum; its live gauges leave.
    mark_process_dead(102, str(tmp_path))  # type: ignore[no-untyped-call]
    s = merged(tmp_path)
    assert value(s, "channels_test_events_total", kind="a") == 12
    assert value(s, "channels_server_connections_open") == 2


def test_directory_created_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    directory = MultiprocessDir()
    try:
        assert directory.owned
        assert Path(directory.path).is_dir()
        assert os.environ[ENV] == directory.path
    finally:
        directory.cleanup()
    assert not Path(directory.path).exists()
    assert ENV not in os.environ


def test_a_directory_given_by_the_user_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    directory = MultiprocessDir()
    directory.cleanup()
    assert not directory.owned
    assert tmp_path.is_dir()
