"""The Prometheus text exposition, served as a small ASGI app.

* ``--metrics-port``: a separate listener (our own HTTP protocol) answering ``GET /metrics``.
* ``--metrics-path``: :class:`MetricsPathMiddleware` answers that path on the main listener
  before the application sees it.

With one process the exposition is ``prometheus_client.REGISTRY``: our collector, the channel
layers' collector, the process/GC metrics, and any metric the application defines.  With
``--workers`` it is the merge of every worker's multiprocess files (see
:mod:`server.metrics.multiprocess`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from server.types import ASGIApp, Receive, Scope, Send

METRICS_PORT_PATH: Final = "/metrics"


def render(multiprocess: bool) -> tuple[bytes, str]:
    """The exposition body and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    if not multiprocess:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsEndpoint:
    """ASGI app answering ``GET``/``HEAD`` with the exposition (405 for other methods)."""

    def __init__(self, produce: Callable[[], tuple[bytes, str]]) -> None:
        self.produce = produce

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, b"Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
            return
        body, content_type = self.produce()
        await _plain(send, 200, body, [(b"content-type", content_type.encode("latin-1"))])


class MetricsPortApp:
    """The app of the ``--metrics-port`` listener: the endpoint on ``/metrics``, 404 elsewhere."""

    def __init__(self, endpoint: MetricsEndpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != METRICS_PORT_PATH:
            await _plain(send, 404, b"Not Found (metrics are on /metrics)\n")
            return
        await self.endpoint(scope, receive, send)


class MetricsPathMiddleware:
    """``--metrics-path`` on the main listener; every other request goes to the app.

    A plain function returning the awaitable of whichever app answers, not a coroutine of its
    own: every request passes through here, and an extra coroutine frame per request is most
    of what a wrapper costs (instruction counts in benchmarks/micro/RESULTS.md)."""

    def __init__(self, app: ASGIApp, path: str, endpoint: MetricsEndpoint) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http" and scope["path"] == self.path:
            return self.endpoint(scope, receive, send)
        return self.app(scope, receive, send)


async def _plain(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    if headers is None:
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
