#!/usr/bin/env python
"""Django's command-line utility for the chat example (``python manage.py check``, ``shell``...).

The chat itself needs no database, so there is nothing to migrate before serving it with
``python -m server --app-dir examples/chat chatsite.asgi:application``.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
