"""Workload B (plain): Django's own ASGI handler, no Channels routing."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_django.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
