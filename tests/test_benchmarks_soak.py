"""``python -m benchmarks soak``: how growth is judged (fast), and a few seconds of the real thing
against our server (slow: real processes and sockets)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak import SERIES, Mix, fit, tolerances, verdicts

ROOT = Path(__file__).resolve().parent.parent


def samples(values: dict[str, list[float]], step: float = 5.0) -> list[dict[str, Any]]:
    count = len(next(iter(values.values())))
    return [{"t": i * step, **{k: v[i] for k, v in values.items()}} for i in range(count)]


def test_fit_recovers_a_line() -> None:
    slope, intercept = fit([(t, 3.0 + 0.5 * t) for t in range(10)])
    assert slope == pytest.approx(0.5) and intercept == pytest.approx(3.0)
    assert fit([(1.0, 2.0), (1.0, 4.0)]) == (0.0, 3.0)  # no time span: no slope


def test_flat_series_with_sampling_noise_pass() -> None:
    mix = Mix()
    rng = random.Random(7)
    n = 40
    # Noise as a flat server shows it: transient connections open at the moment of a sample.
    values = {
        "rss_mib": [60 + rng.uniform(0, 1.5) for _ in range(n)],
        "fds": [90 + rng.randint(0, mix.transient) for _ in range(n)],
        "tasks": [75 + rng.randint(0, 3 * mix.transient) for _ in range(n)],
        "layer_channels": [71 + rng.randint(0, mix.transient) for _ in range(n)],
    }
    judged = verdicts(samples(values), mix)
    assert set(judged) == set(values)
    assert all(v["ok"] for v in judged.values()), judged


def test_worst_case_band_noise_stays_within_tolerance() -> None:
    # The tolerance's 1.5 factor: a band of noise low in the first half of the window and high
    # in the second is the steepest a flat series can look.
    mix = Mix()
    band = mix.transient
    values = {"fds": [90.0] * 20 + [90.0] * 10 + [90.0 + band] * 10}
    assert verdicts(samples(values), mix)["fds"]["ok"]


def test_steady_growth_is_flagged_and_warm_up_is_not() -> None:
    mix = Mix()
    n = 24  # two minutes at 5 s
    values = {
        # One channel per churned connection, never freed: the leak of issue 9 part 2.
        "layer_channels": [71.0 + 20 * i for i in range(n)],
        # Grows while warming up (first half), then flat: not a leak.
        "rss_mib": [40.0 + min(i, n // 2) for i in range(n)],
        # 0.5 MiB a minute for a minute: within the RSS tolerance.
        "objects": [50_000.0] * n,
    }
    values["rss_mib"][-1] += 0.5
    judged = verdicts(samples(values), mix)
    assert not judged["layer_channels"]["ok"]
    assert judged["layer_channels"]["slope_per_min"] == pytest.approx(240.0)
    assert judged["rss_mib"]["ok"] and judged["objects"]["ok"]


def test_rss_tolerance_scales_with_a_big_process() -> None:
    assert tolerances(Mix(), {"rss_mib": 50.0})["rss_mib"] == 4.0
    assert tolerances(Mix(), {"rss_mib": 1000.0})["rss_mib"] == pytest.approx(20.0)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_soak_for_a_few_seconds(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "soak",
            "--seconds",
            "8",
            "--interval",
            "1",
            "--no-plot",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    doc = json.loads((tmp_path / "soak.json").read_text())
    assert done.returncode == (0 if doc["passed"] else 1), done.stdout + done.stderr
    assert doc["problems"] == [], doc["problems"]
    load = doc["load"]
    for part in ("http_requests", "ws_echoes", "fanout_deliveries", "churn_connections"):
        assert load[part]["ok"] > 0 and load[part]["errors"] == 0, load
    assert load["fanout_deliveries"]["lost"] == 0
    assert len(doc["samples"]) >= 8
    judged = doc["verdicts"]
    assert set(judged) == set(SERIES) - {"redis_keys"}  # every series of the in-memory layer
    assert doc["passed"], doc["grew"]  # nothing grows: no per-connection leak, no task leak
