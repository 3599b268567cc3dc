"""Draw ``latest.png`` from ``latest.json``: one panel per workload, one bar per server.

Runs under the peers' interpreter (matplotlib lives there, not in the project's deps) as a plain
script, so it imports nothing from this repository:

    benchmarks/.venv-peers/bin/python benchmarks/plot.py results/latest.json results/latest.png
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from typing import Any

OURS_COLOR = "#d62728"
PEER_COLOR = "#7f7f7f"
CEILING_COLOR = "#1f77b4"


def _fmt(v: float) -> str:
    if v >= 100_000:
        return f"{v / 1000:,.0f}k"
    if v >= 10_000:
        return f"{v / 1000:,.1f}k"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def main(src: str, dst: str) -> None:
    # Imported by name: matplotlib exists only in the peers' venv, not where mypy runs.
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")

    with open(src) as f:
        doc: dict[str, Any] = json.load(f)
    workloads: dict[str, Any] = doc["workloads"]
    labels: dict[str, str] = doc["meta"].get("labels", {})
    panels = [wid for wid in workloads if wid != "F"]
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(8 * cols, 0.5 + 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, wid in zip(axes.flat, panels, strict=False):
        w = workloads[wid]
        results = dict(w["results"])
        if wid == "A" and "F" in workloads:
            results.update(workloads["F"]["results"])
        names = list(results)
        values = [r.get("value") if r.get("status") != "failed" else None for r in results.values()]
        drawn = [v if isinstance(v, int | float) and not math.isnan(v) else 0.0 for v in values]
        colors = [
            OURS_COLOR if n == "ours" else CEILING_COLOR if n == "bare-uvloop" else PEER_COLOR
            for n in names
        ]
        y = list(range(len(names)))[::-1]
        ax.barh(y, drawn, color=colors)
        ax.set_yticks(y, [labels.get(n, n) for n in names], fontsize=9)
        better = "higher" if w["higher_is_better"] else "lower"
        ax.set_title(f"{w['title']}\n{w['metric']}, {better} is better", fontsize=10)
        top = max(drawn) if any(drawn) else 1.0
        ax.set_xlim(0, top * 1.45)
        ax.tick_params(axis="x", labelsize=8)
        for yi, name, v in zip(y, names, values, strict=True):
            r = results[name]
            if v is None or drawn[names.index(name)] == 0.0:
                ax.text(top * 0.02, yi, "failed", va="center", fontsize=8, color="black")
                continue
            text = _fmt(float(v))
            ratio = r.get("ratio_to_ours")
            if name != "ours" and ratio:
                text += f"  ({ratio:.2f}x ours)"
            lost = r.get("lost")
            if lost:
                text += f"  LOST {lost}"
            reach = r.get("broadcast_ms_p50")
            if reach is not None:
                text += f"  [1 broadcast: {reach:.0f} ms]"
            ax.text(float(v) + top * 0.01, yi, text, va="center", fontsize=8)
        # This panel's targets under its axis, green for PASS and red for FAIL.
        mine = [t for t in doc["targets"] if t["workload"] == wid]
        for i, t in enumerate(mine):
            measured = "-" if t["measured"] is None else f"{t['measured']:.2f}"
            color = {"PASS": "#2ca02c", "FAIL": "#d62728"}.get(t["status"], "#555555")
            ax.text(
                0.5,
                -0.16 - 0.12 * i,
                f"{t['status']}: {t['target']} (measured {measured})",
                transform=ax.transAxes,
                ha="center",
                va="top",
                fontsize=8,
                color=color,
                fontweight="bold",
            )
    meta = doc["meta"]
    m = meta["machine"]
    passed = sum(1 for t in doc["targets"] if t["status"] == "PASS")
    total = len(doc["targets"])
    note = f" - ours run with {' '.join(meta['ours_args'])}" if meta.get("ours_args") else ""
    fig.suptitle(
        f"channels-server vs peers ({meta['mode']} mode, {meta['started']} UTC) - {m['cpu']}, "
        f"{m['logical_cpus']} CPUs, {m['kernel']} - server and load generator on separate "
        f"cores, median of {meta['repeats']} - targets passed: {passed}/{total}{note}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
