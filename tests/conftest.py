from __future__ import annotations

import os
import socket

import pytest

# Django is configured once for the whole suite; channels tests use this project.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_project.settings")


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
