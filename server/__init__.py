"""A fast ASGI server (HTTP/1.1 with h11, WebSocket with wsproto, lifespan) for Django Channels."""

from __future__ import annotations

from typing import Any

from server.config import Config

__all__ = ["Config", "Server", "run"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy so that importing server.config (or the sansio core) does not pull in asyncio glue.
    if name in ("Server", "run"):
        from server import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
