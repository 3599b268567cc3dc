"""Django app config: adding "channels" to INSTALLED_APPS enables the ``runserver`` override."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.core import checks

from channels.checks import check_channel_layers


def check_runserver_order(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when staticfiles' ``runserver`` would shadow ours.

    Django takes a management command from the app listed first.  Channels 4 projects put
    "daphne" first and "channels" anywhere; once "daphne" is gone, "channels" listed after
    "django.contrib.staticfiles" would leave ``runserver`` as Django's WSGI server, which
    serves no WebSocket at all.
    """
    names = [config.name for config in apps.get_app_configs()]
    if "django.contrib.staticfiles" not in names or "channels" not in names:
        return []
    staticfiles = names.index("django.contrib.staticfiles")
    # An app named "daphne" listed first provides an ASGI runserver of its own.
    if any(name in names[:staticfiles] for name in ("channels", "daphne")):
        return []
    return [
        checks.Warning(
            '"channels" is listed after "django.contrib.staticfiles" in INSTALLED_APPS, so '
            "runserver is Django's WSGI server and serves no WebSocket.",
            hint='Move "channels" above "django.contrib.staticfiles" (where Channels 4 '
            'projects listed "daphne").',
            id="channels.W001",
        )
    ]


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        checks.register(check_runserver_order)
        checks.register(check_channel_layers)
