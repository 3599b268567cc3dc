"""What the numbers were measured on: CPU, cores, kernel, load, tool and package versions."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return float("nan")
    m = re.search(r"MemTotal:\s+(\d+) kB", text)
    return int(m.group(1)) / 2**20 if m else float("nan")


def _tool_version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].split(" Copyright")[0] if text else "unknown"


def _ours() -> dict[str, str]:
    out: dict[str, str] = {"python": platform.python_version()}
    for name in ("channels-server", "h11", "wsproto", "uvloop", "django", "asgiref", "redis"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "kernel": f"{platform.system()} {platform.release()}",
        "memory_gib": round(_mem_total_gib(), 1),
        "python": sys.version.split()[0],
        "loadavg_at_start": os.getloadavg(),
        "wrk": _tool_version(["wrk", "-v"]),
        "redis_server": _tool_version(["redis-server", "--version"]),
        "ours": _ours(),
    }
