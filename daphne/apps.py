from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class DaphneConfig(AppConfig):
    """The ``daphne`` app label, kept so Channels 4 settings need no edit."""

    name = "daphne"
    verbose_name = "Daphne (served by channels-server)"

    def ready(self) -> None:
        # Channels 4 projects may list "daphne" and not "channels": the same layer check.
        from channels.checks import check_channel_layers

        checks.register(check_channel_layers)
