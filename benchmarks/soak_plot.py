"""Draw the soak's chart from its JSON: one panel per sampled series over time, with the line
fitted through the second half (the part that is judged) and its verdict.

Runs under the peers' interpreter (matplotlib lives there, as for plot.py) as a plain script,
so it imports nothing from this repository:

    benchmarks/.venv-peers/bin/python benchmarks/soak_plot.py results/soak.json results/soak.png
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from typing import Any

OK_COLOR = "#2ca02c"
GROWS_COLOR = "#d62728"
LINE_COLOR = "#1f77b4"
TITLES = {
    "rss_mib": "server RSS (MiB)",
    "fds": "open file descriptors",
    "tasks": "asyncio tasks on the server's loop",
    "objects": "live Python objects (gc)",
    "layer_channels": "layer: channels with a mailbox",
    "layer_groups": "layer: groups",
    "layer_buffered": "layer: messages waiting",
    "redis_keys": "Redis: keys",
}


def main(src: str, dst: str) -> None:
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")

    with open(src) as f:
        doc: dict[str, Any] = json.load(f)
    samples: list[dict[str, Any]] = doc["samples"]
    names = [n for n in TITLES if any(s.get(n) is not None for s in samples)]
    cols = 2
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 0.8 + 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        points = [(s["t"] / 60, s[name]) for s in samples if s.get(name) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], ".-", color=LINE_COLOR, lw=1)
        verdict = doc["verdicts"].get(name)
        title = TITLES[name]
        if verdict is not None:
            # The judged fit, drawn over the second half only.
            slope = verdict["slope_per_min"]
            t0, t1 = verdict["from_t"] / 60, verdict["to_t"] / 60
            y0 = verdict["intercept"] + slope * t0
            y1 = verdict["intercept"] + slope * t1
            color = OK_COLOR if verdict["ok"] else GROWS_COLOR
            ax.plot([t0, t1], [y0, y1], "-", color=color, lw=2.5, alpha=0.8)
            title += (
                f"\n{'flat' if verdict['ok'] else 'GROWS'}: rise {verdict['rise']:.1f} over the "
                f"second half (tolerance {verdict['tolerance']:.1f}), {slope:+.2f}/min"
            )
            ax.set_title(title, fontsize=9, color=color)
        else:
            ax.set_title(title, fontsize=9)
        low = min(p[1] for p in points) if points else 0
        ax.set_ylim(bottom=min(0, low))
        ax.set_xlabel("minutes", fontsize=8)
        ax.tick_params(labelsize=8)
    meta = doc["meta"]
    mix = meta["mix"]
    load = doc["load"]
    fig.suptitle(
        f"soak {'PASS' if doc['passed'] else 'FAIL'} - {meta['started']} UTC, "
        f"{meta['seconds'] / 60:.1f} min, {meta['layer']} layer - "
        f"{load['http_requests']['ok']} HTTP requests, {load['ws_echoes']['ok']} echoes, "
        f"{load['fanout_deliveries']['ok']} fan-out deliveries to {mix['group_members']}, "
        f"{load['churn_connections']['ok']} chat connections opened and closed",
        fontsize=10,
        color=OK_COLOR if doc["passed"] else GROWS_COLOR,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(dst, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
