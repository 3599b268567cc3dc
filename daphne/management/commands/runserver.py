"""``runserver`` for projects listing ``"daphne"`` in INSTALLED_APPS: channels-server's."""

from __future__ import annotations

from channels.management.commands.runserver import Command

__all__ = ["Command"]
