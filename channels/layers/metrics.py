"""Channel layer metrics for Prometheus, sampled when scraped: nothing runs on the hot path.

The layers already count what matters (``InMemoryChannelLayer.statistics()``: messages sent,
received, expired, refused with ``ChannelFull``, group deliveries dropped on a full channel,
buffered messages, groups); :class:`LayerCollector` reads those numbers for every layer the
process has built and reports them with two labels, the ``CHANNEL_LAYERS`` alias and the
backend class.  Never a label per channel or group name.

The contract with the server is ``prometheus_client.REGISTRY``, not an import: the collector is
registered there the first time a layer is built in a process that has ``prometheus_client``
loaded (the server loads it before the application when metrics are on, see
``server.metrics.service``), and whatever serves ``REGISTRY`` exposes it.  Layers without
``statistics()`` report the counters they keep as attributes (``group_send_full``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Final

logger = logging.getLogger("channels.layers")

# statistics() field -> (metric name, kind, help).  Counters get "_total" from the client.
FIELDS: Final = {
    "sent": (
        "channels_layer_messages_sent",
        "counter",
        "Messages accepted by send/group_send (one per group member reached).",
    ),
    "received": (
        "channels_layer_messages_received",
        "counter",
        "Messages handed to a receiver.",
    ),
    "group_sent": (
        "channels_layer_group_send_deliveries",
        "counter",
        "Messages delivered to group members by group_send.",
    ),
    "channel_full": (
        "channels_layer_channel_full",
        "counter",
        "send() calls refused with ChannelFull.",
    ),
    "group_send_full": (
        "channels_layer_group_send_full",
        "counter",
        "group_send deliveries dropped because the member channel was full.",
    ),
    "expired": (
        "channels_layer_messages_expired",
        "counter",
        "Messages dropped because nobody received them within the expiry.",
    ),
    "buffered_messages": (
        "channels_layer_queued_messages",
        "gauge",
        "Messages waiting in the layer's channel buffers (queue depth).",
    ),
    "channels": ("channels_layer_channels", "gauge", "Channels with a buffer or a receiver."),
    "groups": ("channels_layer_groups", "gauge", "Groups with at least one member."),
    "waiting_receivers": (
        "channels_layer_waiting_receivers",
        "gauge",
        "Receivers waiting for a message.",
    ),
}

_lock = threading.Lock()
_installed = False


def layer_numbers(layer: Any) -> dict[str, float]:
    """The numbers of ``FIELDS`` that ``layer`` keeps (from ``statistics()`` or attributes)."""
    stats = getattr(layer, "statistics", None)
    values: Mapping[str, Any]
    if callable(stats):
        result = stats()
        if dataclasses.is_dataclass(result) and not isinstance(result, type):
            values = dataclasses.asdict(result)
        elif isinstance(result, Mapping):
            values = result
        else:
            values = {}
    else:
        values = {name: getattr(layer, name) for name in FIELDS if hasattr(layer, name)}
    return {
        name: float(value)
        for name, value in values.items()
        if name in FIELDS and isinstance(value, int | float) and not isinstance(value, bool)
    }


class LayerCollector:
    """A ``prometheus_client`` collector over the layers of one ``ChannelLayerManager``."""

    def __init__(self, backends: Mapping[str, Any] | Any) -> None:
        # The manager (its ``backends`` dict is replaced when CHANNEL_LAYERS changes) or a dict.
        self._source = backends

    def _layers(self) -> list[tuple[str, Any]]:
        backends = getattr(self._source, "backends", self._source)
        return sorted(dict(backends).items())

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: dict[str, Any] = {}
        for alias, layer in self._layers():
            try:
                numbers = layer_numbers(layer)
            except Exception:  # a scrape must not fail because one layer did
                logger.exception("Could not read statistics of channel layer %r", alias)
                continue
            labels = [alias, type(layer).__name__]
            for field, value in numbers.items():
                name, kind, doc = FIELDS[field]
                family = families.get(name)
                if family is None:
                    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                    family = families[name] = cls(name, doc, labels=["layer", "backend"])
                family.add_metric(labels, value)
        yield from families.values()


def install(manager: Any) -> None:
    """Register a :class:`LayerCollector` for ``manager`` in ``REGISTRY`` (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        from prometheus_client import REGISTRY

        REGISTRY.register(LayerCollector(manager))
        _installed = True
