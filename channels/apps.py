"""Django app config: adding "channels" to INSTALLED_APPS enables the ``runserver`` override."""

from __future__ import annotations

from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = "Channels"
