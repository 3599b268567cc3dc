from __future__ import annotations

from django.apps import AppConfig


class DaphneConfig(AppConfig):
    """The ``daphne`` app label, kept so Channels 4 settings need no edit."""

    name = "daphne"
    verbose_name = "Daphne (served by channels-server)"
