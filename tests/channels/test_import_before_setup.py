"""Every public module imports before ``django.setup()``, as upstream's do.

The Channels tutorial's ``asgi.py`` imports ``channels.auth``, ``channels.routing`` and
``channels.security.websocket`` before ``get_asgi_application()``, and may only set
``DJANGO_SETTINGS_MODULE`` afterwards (``os.environ.setdefault``).  So each module is imported
in a fresh interpreter twice: with no settings at all, and with the settings variable set but
Django not set up (where touching models raises ``AppRegistryNotReady``).
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Management commands are loaded by Django after setup, never by user code.
NOT_PUBLIC = (".management",)

PROBE = """
import importlib, json, sys
failures = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures[name] = f"{type(exc).__name__}: {exc}"
from django.apps import apps
from django.conf import settings
print(json.dumps({"failures": failures, "configured": settings.configured, "ready": apps.ready}))
"""


def public_modules() -> list[str]:
    names = []
    for package in ("channels", "channels_redis", "daphne"):
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            private = any(part.startswith("_") for part in info.name.split("."))
            if not private and not any(marker in info.name for marker in NOT_PUBLIC):
                names.append(info.name)
    return sorted(names)


def test_the_module_list_covers_the_tutorial_imports() -> None:
    modules = public_modules()
    for name in (
        "channels.auth",
        "channels.sessions",
        "channels.security.websocket",
        "channels.routing",
        "channels.layers",
        "channels.db",
        "channels.generic.websocket",
        "channels.consumer",
        "channels.middleware",
        "channels.testing",
        "channels_redis.core",
        "channels_redis.pubsub",
    ):
        assert name in modules


@pytest.mark.parametrize("settings_module", [None, "tests.django_project.settings"])
def test_public_modules_import_before_django_setup(settings_module: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    if settings_module is not None:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE, json.dumps(public_modules())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["failures"] == {}
    # Importing set nothing up behind the project's back.
    assert report["configured"] is False
    assert report["ready"] is False
