"""Ratios, targets and the Markdown/JSON outputs of one run."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.servers import SERVERS


@dataclass(frozen=True)
class Target:
    workload: str  # exact id, or a prefix ending in "*"
    peer: str
    factor: float
    text: str
    lower_is_better: bool = False
    zero_lost: bool = False


TARGETS = (
    Target("A-varied", "uvicorn-httptools", 1.0, "A-varied: ours >= uvicorn-httptools"),
    Target("A-varied", "granian", 1.0, "A-varied: ours >= Granian (goal)"),
    Target("A-close-10", "uvicorn-httptools", 1.0, "A-close-10: ours >= uvicorn-httptools"),
    Target("A-close-11", "uvicorn-httptools", 1.0, "A-close-11: ours >= uvicorn-httptools"),
    Target("A", "granian", 1.0, "A: ours >= Granian"),
    Target("A", "uvicorn-httptools", 1.1, "A: ours >= 1.1x uvicorn-httptools"),
    Target("B-plain", "uvicorn-httptools", 1.0, "B (plain): ours >= uvicorn-httptools"),
    Target("B-plain", "daphne", 1.5, "B (plain): ours >= 1.5x Daphne"),
    Target("B-router", "uvicorn-httptools", 1.0, "B (router): ours >= uvicorn-httptools"),
    Target("B-router", "daphne", 1.5, "B (router): ours >= 1.5x Daphne"),
    Target("C", "uvicorn-httptools", 1.5, "C: ours >= 1.5x uvicorn"),
    Target("C", "daphne", 2.5, "C: ours >= 2.5x Daphne"),
    Target(
        "D-memory-*",
        "uvicorn-httptools",
        10.0,
        "ours >= 10x uvicorn+Channels, 0 lost",
        zero_lost=True,
    ),
    Target(
        "D-redis-*",
        "uvicorn-httptools",
        10.0,
        "ours >= 10x uvicorn+Channels, 0 lost",
        zero_lost=True,
    ),
    Target("H2", "hypercorn", 3.0, "H2: ours >= 3x Hypercorn (h2c)"),
    Target("H2", "granian", 0.0, "H2: ours vs Granian (h2c), reported"),
    Target("H2-WS", "hypercorn", 0.0, "H2-WS: ours vs Hypercorn (RFC 8441), reported"),
    Target("H2-TLS", "daphne", 0.0, "H2-TLS: ours vs Daphne (h2 over TLS), reported"),
    Target("H2-TLS", "hypercorn", 0.0, "H2-TLS: ours vs Hypercorn (h2 over TLS), reported"),
    Target(
        "E", "uvicorn-httptools", 0.5, "E: ours RSS <= 0.5x uvicorn+Channels", lower_is_better=True
    ),
)


# Ours against ours: (workload, base workload, factor, text).  A missing side is N/A.
SELF_TARGETS = (
    (
        "D-scale-cluster-w2",
        "D-scale-redis-w2",
        0.8,
        "D-scale: Redis Cluster >= 0.8x one Redis at 2 workers, 0 lost",
    ),
)


def _value(workloads: dict[str, Any], wid: str, server: str) -> float | None:
    r = workloads.get(wid, {}).get("results", {}).get(server)
    if not r or r.get("status") not in ("ok", "partial"):
        return None
    v = r.get("value")
    return float(v) if isinstance(v, int | float) and not math.isnan(v) and v > 0 else None


def add_ratios(workloads: dict[str, Any]) -> None:
    """Each server's figure divided by ours from the same run (``ratio_base`` for F)."""
    for wid, w in workloads.items():
        base = _value(workloads, w.get("ratio_base") or wid, "ours")
        for name, r in w["results"].items():
            v = _value(workloads, wid, name)
            r["ratio_to_ours"] = v / base if v is not None and base is not None else None


def evaluate_targets(workloads: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in TARGETS:
        if t.workload.endswith("*"):
            ids = [w for w in workloads if w.startswith(t.workload[:-1])]
        else:
            ids = [t.workload] if t.workload in workloads else []
        for wid in ids:
            ours = _value(workloads, wid, "ours")
            peer = _value(workloads, wid, t.peer)
            text = t.text if not t.workload.endswith("*") else f"{wid}: {t.text}"
            row: dict[str, Any] = {
                "workload": wid,
                "target": text,
                "peer": t.peer,
                "required": t.factor,
                "measured": None,
                "status": "N/A",
            }
            if ours is not None and peer is not None:
                ratio = ours / peer
                row["measured"] = ratio
                ok = ratio <= t.factor if t.lower_is_better else ratio >= t.factor
                if t.zero_lost:
                    lost = workloads[wid]["results"]["ours"].get("lost")
                    row["ours_lost"] = lost
                    ok = ok and lost == 0
                row["status"] = "PASS" if ok else "FAIL"
            out.append(row)
    for wid, base_id, factor, text in SELF_TARGETS:
        ours, base = _value(workloads, wid, "ours"), _value(workloads, base_id, "ours")
        if wid not in workloads and base_id not in workloads:
            continue
        row = {"workload": wid, "target": text, "peer": f"{base_id} (ours)", "required": factor,
               "measured": None, "status": "N/A"}  # fmt: skip
        if ours is not None and base is not None:
            lost = [workloads[i]["results"]["ours"].get("lost") for i in (wid, base_id)]
            row["measured"] = ours / base
            row["status"] = "PASS" if ours / base >= factor and lost == [0, 0] else "FAIL"
        out.append(row)
    return out


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    m = meta["machine"]
    lines = [
        f"# Benchmark results ({meta['mode']} mode)",
        "",
        f"Run {meta['started']} UTC, {meta['elapsed_s']:.0f} s. Machine: {m['cpu']}, "
        f"{m['logical_cpus']} logical CPUs, {m['kernel']}, Python {m['python']}, "
        f"{m['memory_gib']} GiB RAM; load average at start {m['loadavg_at_start'][0]:.2f}.",
        f"Server pinned to CPU {meta['server_core']}, load generator to CPU "
        f"{meta['load_core']}. Warm-up {meta['warmup']} s, then {meta['repeats']} windows of "
        f"{meta['duration']} s; the figure is the median window. One worker per server, "
        "access logs off.",
        f"Load generators: {m['wrk']} (HTTP, 1 thread, {meta['wrk_connections']} "
        "connections); `benchmarks/loadgen/ws.py` (WebSocket, asyncio + uvloop, pre-built "
        "masked frames). Their CPU use is shown next to the server's: a server at ~100% with "
        "the load generator well below 100% means the server was the bottleneck. "
        "`others on server core %` is the share of the server's core that other processes "
        "used during the windows: on a shared machine, a high value means the server was "
        "starved of CPU and its figure understates it.",
        f"Ours: {_versions(meta['machine']['ours'])}. Peers: {_versions(meta['peers'])}. "
        f"Redis: {m['redis_server']}.",
        "",
        "`x ours` = that server's figure divided by ours from the same run (for RSS, lower "
        "is better).",
        "",
        "## Targets",
        "",
        "| target | measured (ours / peer) | required | result |",
        "|---|---|---|---|",
    ]
    for t in doc["targets"]:
        sign = "<=" if "RSS" in t["target"] else ">="
        lost_note = f", lost {t['ours_lost']}" if "ours_lost" in t else ""
        lines.append(
            f"| {t['target']} | {_fmt(t['measured'], 2)}{lost_note} | {sign} "
            f"{t['required']} | **{t['status']}** |"
        )
    for w in doc["workloads"].values():
        lines += [
            "",
            f"## {w['title']}",
            "",
            f"Metric: {w['metric']} ({'higher' if w['higher_is_better'] else 'lower'} is better).",
            "",
        ]
        extra: list[str] = {
            "fanout": ["lost", "dup", "1 broadcast to all (ms)"],
            "idle": ["PSS MiB", "baseline MiB", "KiB/conn"],
        }.get(w["kind"], ["p50 ms", "p99 ms"])
        lines.append(
            "| server | "
            + w["metric"]
            + " | x ours | "
            + " | ".join(extra)
            + " | non-2xx | errors | server CPU % | loadgen CPU % | others on server core % "
            + "| windows |"
        )
        lines.append("|---" * (9 + len(extra)) + "|")
        for name, r in w["results"].items():
            label = SERVERS[name].label if name in SERVERS else name
            if r.get("status") == "failed":
                err = str(r.get("error", "")).splitlines()[0][:120]
                lines.append(f"| {label} | FAILED: {err} |" + " |" * (8 + len(extra)))
                continue
            if w["kind"] == "fanout":
                cells = [
                    _fmt(r.get("lost")),
                    _fmt(r.get("duplicates")),
                    _fmt(r.get("broadcast_ms_p50"), 1),
                ]
            elif w["kind"] == "idle":
                cells = [
                    _fmt(r.get("pss_mib"), 1),
                    _fmt(r.get("baseline_mib"), 1),
                    _fmt(r.get("per_connection_kib"), 1),
                ]
            else:
                cells = [_fmt(r.get("p50_ms"), 2), _fmt(r.get("p99_ms"), 2)]
            digits = 1 if w["kind"] == "idle" else 0
            windows = ", ".join(_fmt(x, digits) for x in r.get("repeats", []))
            if r.get("discarded_windows"):
                windows += f" ({len(r['discarded_windows'])} contended, redone)"
            status = "" if r.get("status") == "ok" else f" ({r.get('status')})"
            lines.append(
                f"| {label}{status} | {_fmt(r.get('value'), digits)} | "
                f"{_fmt(r.get('ratio_to_ours'), 2)} | "
                + " | ".join(cells)
                + f" | {_fmt(r.get('non_2xx'))} | {_fmt(r.get('errors'))} | "
                f"{_fmt(r.get('server_cpu_pct'))} | {_fmt(r.get('loadgen_cpu_pct'))} | "
                f"{_fmt(r.get('others_on_server_core_pct'))} | "
                f"{windows} |"
            )
    lines.append("")
    return "\n".join(lines)


def _versions(v: dict[str, str]) -> str:
    return ", ".join(f"{k} {val}" for k, val in v.items()) or "not installed"


def _clean(v: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def write(doc: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(_clean(doc), indent=2, default=str) + "\n")
    md_path.write_text(markdown(doc))
    return json_path, md_path
