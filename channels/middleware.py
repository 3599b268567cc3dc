"""Base class for ASGI middleware that adjusts the scope before calling the inner app."""

from __future__ import annotations

from typing import Any

from .utils import Receive, Scope, Send


class BaseMiddleware:
    """Copies the scope (so changes never leak to outer apps) and calls ``inner``.

    Subclasses override ``__call__``, change their copy of the scope, then ``super().__call__``.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        scope = dict(scope)
        return await self.inner(scope, receive, send)
