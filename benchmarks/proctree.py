"""CPU time and memory of a process and all its descendants, read from /proc (Linux only).

Some servers fork a worker (Granian, for instance), so every figure is summed over the tree.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found = [pid]
    i = 0
    while i < len(found):
        found.extend(children.get(found[i], ()))
        i += 1
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by the tree rooted at ``pid``."""
    total = 0
    for p in tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            # Fields 14 and 15 of stat (utime, stime); the slice starts at field 3.
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size summed over the tree (shared pages counted once per process)."""
    total = 0
    for p in tree(pid):
        try:
            resident = int(Path(f"/proc/{p}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident * _PAGE
    return total


def pss_bytes(pid: int) -> int:
    """Proportional set size summed over the tree: shared pages split between the sharers."""
    total = 0
    for p in tree(pid):
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def core_busy_seconds(core: int) -> float:
    """Seconds CPU ``core`` spent busy (anything but idle/iowait) since boot, from /proc/stat.

    Compared with the server's own CPU time over a window, it shows how much of the server's
    core other processes took (on a shared machine that skews every figure).
    """
    prefix = f"cpu{core} "
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(prefix):
                fields = [int(x) for x in line.split()[1:]]
                idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
                # Guest time is already included in user/nice.
                return (sum(fields[:8]) - idle) / _TICKS
    except (OSError, ValueError):
        pass
    return float("nan")
