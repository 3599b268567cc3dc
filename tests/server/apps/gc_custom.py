"""``basic.app`` from a module that picks its own garbage-collector thresholds at import time,
as a project may in ``asgi.py``: the server's start-up default must not override them."""

from __future__ import annotations

import gc

gc.set_threshold(1234, 5, 5)

from tests.server.apps.basic import app  # noqa: E402

__all__ = ["app"]
