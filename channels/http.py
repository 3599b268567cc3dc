"""Deprecated Channels 2/3 HTTP handler, kept so old ``asgi.py`` files keep working."""

from __future__ import annotations

import warnings
from typing import Any

from django.core.handlers.asgi import ASGIHandler


class AsgiHandler(ASGIHandler):
    """Django's own ASGI handler under its old Channels name.

    Deprecated: use ``django.core.asgi.get_asgi_application()`` in ``asgi.py`` instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(
            "channels.http.AsgiHandler is deprecated and will be removed; use "
            "django.core.asgi.get_asgi_application() instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__()
