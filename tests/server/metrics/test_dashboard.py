"""docs/grafana-dashboard.json: valid, and every series it queries is one we export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from channels.layers import InMemoryChannelLayer
from channels.layers.metrics import LayerCollector
from server.metrics import recorder
from server.metrics.collector import ServerCollector
from server.metrics.recorder import Recorder
from tests.support.metrics import parse

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana-dashboard.json"


def exported_names() -> set[str]:
    rec = Recorder()
    rec.request("GET", 200, 0.01)  # these two families have no series before the first event
    rec.ws_closed(1000)
    previous, recorder.active = recorder.active, rec
    try:
        registry = CollectorRegistry()
        registry.register(ServerCollector())
        registry.register(LayerCollector({"default": InMemoryChannelLayer()}))  # type: ignore[arg-type]
        samples, _ = parse(generate_latest(registry).decode())
    finally:
        recorder.active = previous
    return {name for name, _ in samples}


def test_every_queried_series_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queried = {name for expr in exprs for name in re.findall(r"\b(channels_[a-z_]+)\b", expr)}
    assert queried, "no queries found"
    missing = queried - exported_names()
    assert not missing, missing
    # Each panel has a unique id and every query a refId.
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(t["refId"] for panel in dashboard["panels"] for t in panel["targets"])
