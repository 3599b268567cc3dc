"""Prometheus metrics (``--metrics-port`` / ``--metrics-path``); see README "Monitoring".

* :mod:`.recorder`: plain per-process counters the protocols add to as part of their own
  bookkeeping (requests, durations, bytes, messages; nothing when off).
* :mod:`.collector`: those counters, and the open connections of the server state, as
  Prometheus families, at scrape time.
* :mod:`.loop_lag`: event-loop lag sampling.
* :mod:`.multiprocess`: ``--workers`` (prometheus_client multiprocess files, mirroring).
* :mod:`.exposition`: the ``/metrics`` endpoint; :mod:`.service`: start/stop per process.

Only :mod:`.recorder` is imported by the hot path; the rest (and ``prometheus_client``) is
loaded when metrics are switched on.
"""

from __future__ import annotations


class MetricsUnavailable(Exception):
    """prometheus_client is not installed; ``str()`` is the one line shown to the user."""


def require_prometheus_client() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise MetricsUnavailable(
            "--metrics-port/--metrics-path need prometheus_client "
            "(pip install 'channels-server[metrics]')"
        ) from None
