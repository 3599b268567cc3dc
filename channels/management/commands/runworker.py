"""``manage.py runworker channel [channel ...] [--layer ALIAS]``: run a background worker."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management import BaseCommand, CommandError, CommandParser

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import get_channel_layer
from channels.routing import get_default_application
from channels.worker import Worker

logger = logging.getLogger("channels.worker")


class Command(BaseCommand):
    help = "Runs a worker consuming the given channel names of a channel layer."
    leave_locale_alone = True
    worker_class = Worker

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--layer",
            action="store",
            dest="layer",
            default=DEFAULT_CHANNEL_LAYER,
            help="Channel layer alias to use, if not the default.",
        )
        parser.add_argument("channels", nargs="+", help="Channels to listen on.")

    def handle(self, *args: Any, **options: Any) -> None:
        alias: str = options["layer"]
        layer = get_channel_layer(alias)
        if layer is None:
            raise CommandError(f"No channel layer configured under CHANNEL_LAYERS[{alias!r}].")
        channels: list[str] = options["channels"]
        for channel in channels:
            try:
                layer.require_valid_channel_name(channel)
            except (TypeError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            if "!" in channel:
                raise CommandError(f"Cannot run a worker on process-local channel {channel!r}.")
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(f"Running worker for channels {channels}")
        worker = self.worker_class(
            application=get_default_application(), channels=channels, channel_layer=layer
        )
        worker.run()
