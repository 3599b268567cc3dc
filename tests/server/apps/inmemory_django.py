"""A Django ASGI app on ``inmemory_settings`` (the supervisor's in-memory layer warning)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.server.apps.inmemory_settings")

application = get_asgi_application()
