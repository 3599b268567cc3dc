"""The benchmark harness: its parsers and bookkeeping (fast), and one tiny end-to-end run of
``python -m benchmarks run --smoke`` against our server only (slow: real processes, wrk)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.loadgen import h2load, wrk
from benchmarks.loadgen.wsclient import MASK, WSClient, masked_frame
from benchmarks.windows import WindowPlan

ROOT = Path(__file__).resolve().parent.parent

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.44ms    0.99ms  13.25ms   93.44%
    Req/Sec    48.03k     8.94k   56.31k    90.00%
  Latency Distribution
     50%  850.00us
     75%    1.24ms
     90%    1.95ms
     99%    1.10s
  47737 requests in 1.01s, 6.01MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  47460.12
Transfer/sec:      5.97MB
"""


def test_wrk_report_is_parsed_with_units_and_error_counts() -> None:
    requests, rate, p50, p99, non2xx, errors = wrk.parse(WRK_OUTPUT)
    assert (requests, rate, non2xx, errors) == (47737, 47460.12, 7, 5)
    assert p50 == pytest.approx(0.85)
    assert p99 == pytest.approx(1100.0)


H2LOAD_OUTPUT = """\
starting benchmark...
Application protocol: h2c
finished in 3.01s, 3846.67 req/s, 107.85KB/s
requests: 11540 total, 12180 started, 11540 done, 11530 succeeded, 4 failed, 6 errored, 0 timeout
status codes: 11530 2xx, 0 3xx, 2 4xx, 1 5xx
traffic: 323.55KB (331315) total, 60.93KB (62391) headers (space savings 94.65%)
                     min         max         mean         sd        +/- sd
time for request:     2.79ms       2.84s    119.35ms    232.62ms    97.40%
"""


def test_h2load_report_is_parsed() -> None:
    requests, rate, mean, worst, failed, errored, non2xx, protocol = h2load.parse(H2LOAD_OUTPUT)
    assert (requests, rate, failed, errored, non2xx, protocol) == (11530, 3846.67, 4, 6, 3, "h2c")
    assert mean == pytest.approx(119.35)
    assert worst == pytest.approx(2840.0)
    with pytest.raises(ValueError, match="no result"):
        h2load.parse("connect to 127.0.0.1:1 failed\n")


def test_wrk_without_a_result_is_an_error() -> None:
    with pytest.raises(ValueError, match="no result"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def _unmask(frame: bytes, header: int) -> bytes:
    key = frame[header : header + 4]
    return bytes(b ^ key[i % 4] for i, b in enumerate(frame[header + 4 :]))


@pytest.mark.parametrize("size", [0, 1, 64, 125, 126, 65535, 65536])
def test_client_frames_are_masked_with_the_right_length_encoding(size: int) -> None:
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    frame = masked_frame(0x1, payload)
    assert frame[0] == 0x81  # FIN + text
    assert frame[1] & 0x80  # RFC 6455 §5.3: client frames are masked
    header = 2 if size < 126 else 4 if size < 65536 else 10
    assert frame[header : header + 4] == MASK
    assert _unmask(frame, header) == payload


class _RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def _opened_client() -> tuple[WSClient, list[bytes], _RecordingTransport]:
    loop = asyncio.new_event_loop()
    got: list[bytes] = []
    client = WSClient(b"GET / HTTP/1.1\r\n\r\n", lambda c, p: got.append(p), loop)
    transport = _RecordingTransport()
    client.connection_made(transport)
    from benchmarks.loadgen.wsclient import ACCEPT

    client.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n"
    )
    assert client.is_open
    loop.close()
    return client, got, transport


def test_client_reassembles_split_and_fragmented_messages_and_answers_pings() -> None:
    client, got, transport = _opened_client()
    stream = (
        b"\x81\x05hello"  # one text frame
        + b"\x01\x03abc"
        + b"\x89\x02hi"
        + b"\x80\x03def"  # fragmented, ping in between
        + b"\x82\x7e\x01\x00"
        + b"z" * 256  # 16-bit length
    )
    for i in range(len(stream)):  # one byte at a time
        client.data_received(stream[i : i + 1])
    assert got == [b"hello", b"abcdef", b"z" * 256]
    # The pong carries the ping's payload, masked.
    assert transport.data.endswith(masked_frame(0xA, b"hi"))


def test_client_refuses_a_wrong_accept_and_masked_server_frames() -> None:
    loop = asyncio.new_event_loop()
    client = WSClient(b"", lambda c, p: None, loop)
    client.connection_made(_RecordingTransport())
    client.data_received(b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n")
    assert client.opened.done() and client.opened.exception() is not None
    loop.close()
    opened, _, transport = _opened_client()
    opened.data_received(b"\x81\x81abcdX")  # masked frame from the server: §5.1 violation
    assert transport.aborted and opened.protocol_errors == 1


def test_contended_windows_are_redone_a_bounded_number_of_times() -> None:
    plan = WindowPlan(repeats=3, extra=2, max_contention=15.0)
    kept = []
    for others in [0.0, 40.0, 3.0, 50.0, 60.0, 2.0]:
        if not plan.more():
            break
        kept.append(plan.keep(others))
    # Two contended windows redone, the third kept because no extra window was left.
    assert kept == [True, False, True, False, True]
    assert not plan.more() and plan.discarded == 2
    assert WindowPlan(1, 1, 15.0).keep(float("nan")) is True


def _doc(values: dict[str, dict[str, float]], lost: int = 0) -> dict[str, Any]:
    workloads: dict[str, Any] = {}
    for wid, per_server in values.items():
        workloads[wid] = {
            "title": wid,
            "kind": "fanout" if wid.startswith("D") else "http",
            "metric": "x",
            "higher_is_better": wid != "E",
            "ratio_base": None,
            "results": {
                n: {"status": "ok", "value": v, "lost": lost} for n, v in per_server.items()
            },
        }
    return workloads


def test_ratios_and_targets() -> None:
    workloads = _doc(
        {
            "A": {"ours": 110.0, "granian": 100.0, "uvicorn-httptools": 100.0},
            "C": {"ours": 100.0, "uvicorn-httptools": 80.0},
            "D-memory-500": {"ours": 1000.0, "uvicorn-httptools": 100.0},
            "E": {"ours": 50.0, "uvicorn-httptools": 100.0},
        }
    )
    report.add_ratios(workloads)
    assert workloads["A"]["results"]["granian"]["ratio_to_ours"] == pytest.approx(100 / 110)
    by_text = {t["target"]: t for t in report.evaluate_targets(workloads)}
    assert by_text["A: ours >= Granian"]["status"] == "PASS"
    assert by_text["A: ours >= 1.1x uvicorn-httptools"]["status"] == "PASS"
    assert by_text["C: ours >= 1.5x uvicorn"]["status"] == "FAIL"
    assert by_text["C: ours >= 2.5x Daphne"]["status"] == "N/A"
    assert by_text["D-memory-500: ours >= 10x uvicorn+Channels, 0 lost"]["status"] == "PASS"
    assert by_text["E: ours RSS <= 0.5x uvicorn+Channels"]["status"] == "PASS"


def test_lost_messages_fail_the_fanout_target() -> None:
    workloads = _doc({"D-memory-500": {"ours": 5000.0, "uvicorn-httptools": 100.0}}, lost=3)
    (target,) = report.evaluate_targets(workloads)
    assert target["status"] == "FAIL" and target["ours_lost"] == 3


def test_cluster_scale_target_compares_ours_with_ours() -> None:
    workloads = _doc({"D-scale-redis-w2": {"ours": 100.0}, "D-scale-cluster-w2": {"ours": 85.0}})
    (target,) = report.evaluate_targets(workloads)
    assert target["status"] == "PASS" and target["measured"] == pytest.approx(0.85)
    workloads["D-scale-cluster-w2"]["results"]["ours"]["lost"] = 1
    assert report.evaluate_targets(workloads)[0]["status"] == "FAIL"
    slow = _doc({"D-scale-redis-w2": {"ours": 100.0}, "D-scale-cluster-w2": {"ours": 70.0}})
    assert report.evaluate_targets(slow)[0]["status"] == "FAIL"


@pytest.mark.slow
def test_smoke_run_against_our_server(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    # Redis fan-out runs too when a redis-server binary is there (the harness starts its own).
    redis = [] if shutil.which("redis-server") else ["--no-redis"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "run",
            "--smoke",
            "--servers",
            "ours",
            "--no-install",
            "--no-plot",
            "--out",
            str(tmp_path),
            *redis,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert doc["meta"]["complete"] is True
    assert doc["meta"]["machine"]["logical_cpus"] >= 1
    workloads = doc["workloads"]
    assert {"A", "F", "B-plain", "B-router", "C", "E"} <= set(workloads)
    assert any(w.startswith("D-memory-") for w in workloads)
    assert any(w.startswith("D-redis-") for w in workloads) == (not redis)
    assert {"H2", "H2-WS", "H2-TLS"} <= set(workloads)
    for wid, w in workloads.items():
        name = "bare-uvloop" if wid == "F" else "ours"
        r = w["results"][name]
        if wid in ("H2", "H2-TLS") and shutil.which("h2load") is None:
            assert r["status"] == "failed"  # reported, not hidden
            continue
        if wid == "H2-TLS" and shutil.which("openssl") is None:
            assert r["status"] == "failed"  # no certificate without the openssl CLI
            continue
        assert r["status"] == "ok", (wid, r)
        assert r["value"] > 0, (wid, r)
        assert len(r["repeats"]) == 2, (wid, r)
        assert r.get("non_2xx", 0) == 0 and r.get("errors", 0) == 0, (wid, r)
        if wid.startswith("D-"):
            assert r["lost"] == 0 and r["duplicates"] == 0, r
    # The Channels workloads really ran this repository's channels package.
    channels_file = Path(workloads["C"]["results"]["ours"]["stack"]["channels_file"])
    assert ROOT / "channels" in channels_file.parents
    # D-scale at 2 workers, on one Redis and on a 3-primary cluster (needs redis-cli too).
    assert ("D-scale-redis-w2" in workloads) == (not redis)
    cluster = not redis and shutil.which("redis-cli") is not None
    assert ("D-scale-cluster-w2" in workloads) == cluster
    # Every target is listed; without peers only the ours-against-ours ones can be decided.
    assert doc["targets"]
    assert all(t["status"] == "N/A" for t in doc["targets"] if "(ours)" not in t["peer"])
    md = (tmp_path / "latest.md").read_text()
    assert "## Targets" in md and "| channels-server (ours) |" in md
    assert "FAILED" not in md or not (shutil.which("h2load") and shutil.which("openssl"))


def test_full_mode_plan_covers_every_workload_and_bounds_the_big_runs(tmp_path: Path) -> None:
    from benchmarks import cli
    from benchmarks.workloads import catalog

    args = cli.parse(["run"])
    s = cli.settings_for(args, tmp_path)
    s.redis_url = "redis://127.0.0.1:1/0"
    plan = {w.id: cli.servers_for(w, args) for w in catalog(s)}
    assert set(plan) == {
        "A-varied",
        "A",
        "A-close-10",
        "A-close-11",
        "F",
        "B-plain",
        "B-router",
        "C",
        "D-memory-500",
        "D-memory-5000",
        "D-redis-500",
        "D-redis-5000",
        "D-scale-redis-w1",
        "D-scale-redis-w2",
        "D-scale-redis-w4",
        "H2",
        "H2-WS",
        "H2-TLS",
        "E",
    }
    assert plan["D-scale-redis-w4"] == ["ours", "uvicorn-httptools"]
    s.cluster_urls = ["redis+cluster://127.0.0.1:1"]
    scaled = {w.id: w for w in catalog(s) if w.id.startswith("D-scale-cluster")}
    assert sorted(scaled) == ["D-scale-cluster-w1", "D-scale-cluster-w2", "D-scale-cluster-w4"]
    # channels_redis has no cluster support: only ours runs there; --servers narrows D-scale.
    assert all(cli.servers_for(w, args) == ["ours"] for w in scaled.values())
    only_ours = cli.parse(["run", "--servers", "ours"])
    two_workers = next(w for w in catalog(s) if w.id == "D-scale-redis-w2")
    assert cli.servers_for(two_workers, only_ours) == ["ours"]
    assert plan["A"] == list(cli.ALL) and plan["F"] == ["bare-uvloop"]
    # Only the servers that speak h2c with prior knowledge run H2.
    assert plan["H2"] == ["ours", "hypercorn", "granian"]
    # RFC 8441 only where the peer offers it; h2 over TLS for every HTTP/2 stack, Daphne too.
    assert plan["H2-WS"] == ["ours", "hypercorn"]
    assert plan["H2-TLS"] == ["ours", "daphne", "hypercorn", "granian"]
    assert plan["D-redis-5000"] == ["ours", "uvicorn-httptools"]
    assert "uvicorn-httptools" in plan["E"] and s.idle_clients == 10_000
    quick = cli.parse(["run", "--quick", "--workloads", "A,D"])
    qs = cli.settings_for(quick, tmp_path)
    chosen = [w.id for w in catalog(qs) if cli._selected(w, quick.workloads)]
    assert chosen == ["A-varied", "A", "A-close-10", "A-close-11", "D-memory-500"]
    assert cli.servers_for(catalog(qs)[0], quick) == ["ours", "granian", "uvicorn-httptools"]


def test_metrics_overhead_benchmark_measures_both_modes() -> None:
    from benchmarks.micro import metrics_overhead

    for bench in (metrics_overhead.http_sequential, metrics_overhead.ws_roundtrip):
        for metrics in (False, True):
            # The benchmark asserts itself that "on" counted every request/message.
            assert asyncio.run(bench(20, metrics)) > 0


def test_instruction_count_drivers_run_with_metrics_off_and_on() -> None:
    from benchmarks.micro import http_instructions, ws_instructions
    from server.metrics import recorder

    previous = recorder.active
    try:
        for case in ("varied", "close"):
            for mode in (None, "port", "path"):
                # With metrics the driver asserts itself that every request was counted.
                asyncio.run(http_instructions.run(case, 5, mode))
        for on in (False, True):
            asyncio.run(ws_instructions.run(5, on))
    finally:
        recorder.active = previous


def test_ours_metrics_is_measured_only_when_named() -> None:
    from benchmarks import cli, servers

    args = cli.parse(["run", "--servers", "ours,ours-metrics", "--workloads", "A"])
    workload = next(w for w in cli.catalog(cli.settings_for(args, ROOT)) if w.id == "A")
    assert cli.servers_for(workload, args) == ["ours", "ours-metrics"]
    assert "--metrics-port" in servers.SERVERS["ours-metrics"].argv("app:app", 1234)
    default = cli.parse(["run", "--workloads", "A"])
    assert "ours-metrics" not in cli.servers_for(workload, default)
