"""Start-up checks of ``CHANNEL_LAYERS``: a BACKEND that cannot be imported fails early.

Without them a typo (or ``channels_redis`` missing) only shows when the first consumer asks
for its layer: ``manage.py check`` passes, HTTP works, and every WebSocket handshake gets a 500.

* :func:`check_channel_layers` is a Django system check (``channels.E001``), registered by the
  ``channels`` and ``daphne`` app configs: ``manage.py check`` and ``runserver`` report it.
* :func:`validate_channel_layers` raises ``ImproperlyConfigured`` with one line naming the alias
  and the path.  ``ProtocolTypeRouter`` and ``get_default_application()`` call it when the
  application is built, so the ASGI server's start-up (importing ``asgi.py``) fails, whatever
  its ``INSTALLED_APPS``, instead of the first handshake.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

# Modules only the Redis layers need, and the extra that installs them.
_REDIS_DEPENDENCIES = frozenset({"redis", "msgpack", "cryptography"})


def channel_layer_problems() -> list[str]:
    """One line per ``CHANNEL_LAYERS`` alias whose BACKEND cannot be imported."""
    from django.apps import apps

    # Before django.setup() a backend module importing models would fail for another reason.
    if not settings.configured or not apps.ready:
        return []
    layers = getattr(settings, "CHANNEL_LAYERS", None)
    if not isinstance(layers, dict):
        return []  # the layer manager reports a malformed setting with its own message
    problems = []
    for alias, config in layers.items():
        path = config.get("BACKEND") if isinstance(config, dict) else None
        if not isinstance(path, str) or not path:
            continue  # also the manager's to report, on first use
        try:
            import_string(path)
        except Exception as exc:  # a broken backend module fails the same way as a missing one
            problems.append(_describe(alias, path, exc))
    return problems


def _describe(alias: Any, path: str, exc: Exception) -> str:
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if not isinstance(exc, ImportError):
        reason = f"{type(exc).__name__}: {reason}"
    hint = ""
    missing = (getattr(exc, "name", None) or "").partition(".")[0]
    if missing in _REDIS_DEPENDENCIES:
        hint = " (the Redis layers need: pip install 'channels-server[redis]')"
    return f"CHANNEL_LAYERS[{alias!r}]: cannot import BACKEND {path!r}: {reason}{hint}"


def validate_channel_layers() -> None:
    """Raise ``ImproperlyConfigured`` (one line) when a BACKEND cannot be imported."""
    problems = channel_layer_problems()
    if problems:
        raise ImproperlyConfigured("; ".join(problems))


def check_channel_layers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            problem,
            hint="Fix the path, or install the package that provides it. Settings written for "
            "channels_redis work unchanged: channels-server ships channels_redis.core and "
            "channels_redis.pubsub.",
            id="channels.E001",
        )
        for problem in channel_layer_problems()
    ]
