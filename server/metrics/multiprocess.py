"""``--workers`` with metrics: prometheus_client's multiprocess mode.

Each worker writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``; whichever worker
answers a scrape merges every worker's files (``MultiProcessCollector``).  prometheus_client
only does that for its own ``Counter``/``Gauge``/... objects: collectors that sample at scrape
time (ours and the channel layers') are invisible to the other workers.  So each worker
*mirrors* them: every :data:`MIRROR_INTERVAL` seconds (and before answering a scrape, and when
it stops) the current values of every ``channels_*`` family in ``REGISTRY`` are written to
its own files.  Counters of a dead worker stay in the sum, as Prometheus expects of counters;
its ``live*`` gauges are removed by the supervisor (``mark_process_dead``).

The supervisor owns the directory: it creates a fresh temporary one (unless the environment
already names one) before forking and removes it when it exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, Final

ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# How stale another worker's sampled values may be in a scrape, in seconds.
MIRROR_INTERVAL: Final = 1.0
# Families mirrored: ours (channels_server_*) and the channel layers' (channels_layer_*).
MIRRORED_PREFIX: Final = "channels_"


def enabled() -> bool:
    return bool(os.environ.get(ENV))


class MultiprocessDir:
    """Used by the supervisor: set up before the first fork, cleaned up at exit."""

    def __init__(self) -> None:
        given = os.environ.get(ENV)
        self.owned = not given
        self.path = given or tempfile.mkdtemp(prefix="channels-server-metrics-")
        # Before any prometheus_client import in this process or the workers: the library
        # picks its value storage at import time from this variable.
        os.environ[ENV] = self.path

    def worker_exited(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def cleanup(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)
            with contextlib.suppress(KeyError):
                del os.environ[ENV]


class Mirror:
    """Writes sampled families into this process's multiprocess files."""

    def __init__(self, registry: Any = None, value_class: Any = None) -> None:
        from prometheus_client import REGISTRY, values

        self._registry = REGISTRY if registry is None else registry
        self._value_class: Any = values.ValueClass if value_class is None else value_class
        self._values: dict[tuple[Any, ...], Any] = {}

    def sync(self) -> None:
        from server.metrics.collector import GAUGE_MODES

        for family in self._registry.collect():
            if not family.name.startswith(MIRRORED_PREFIX):
                continue
            kind = family.type
            if kind == "counter":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        self._set(kind, "", family, sample.name, sample.labels, sample.value)
            elif kind == "gauge":
                mode = GAUGE_MODES.get(family.name, "livesum")
                for sample in family.samples:
                    self._set(kind, mode, family, sample.name, sample.labels, sample.value)
            elif kind == "histogram":
                self._sync_histogram(family)

    def _sync_histogram(self, family: Any) -> None:
        # Files hold per-bucket counts; the merge makes them cumulative again.
        previous: dict[tuple[tuple[str, str], ...], float] = {}
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                rest = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                below = previous.get(rest, 0.0)
                previous[rest] = sample.value
                value = sample.value - below
            elif sample.name.endswith("_sum"):
                value = sample.value
            else:
                continue  # _count and _created are derived by the merge
            self._set("histogram", "", family, sample.name, sample.labels, value)

    def _set(
        self, kind: str, mode: str, family: Any, name: str, labels: dict[str, str], value: float
    ) -> None:
        key = (kind, mode, name, tuple(sorted(labels.items())))
        holder = self._values.get(key)
        if holder is None:
            names = sorted(labels)
            holder = self._values[key] = self._value_class(
                kind,
                family.name,
                name,
                names,
                [labels[n] for n in names],
                family.documentation,
                multiprocess_mode=mode,
            )
        holder.set(value)
