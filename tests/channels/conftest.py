"""Fixtures for the channels framework tests: Django set up once, a real SQLite test database
on demand, and fresh channel layers for every test (layers hold loop-bound futures)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import django
import pytest

django.setup()


LAYERS_TESTS = Path(__file__).resolve().parent / "layers"


@pytest.fixture(autouse=True)
def _fresh_channel_layers(request: pytest.FixtureRequest) -> Iterator[None]:
    # Only for the framework tests here; tests/channels/layers/ manages layers itself.
    if LAYERS_TESTS in Path(request.node.path).resolve().parents:
        yield
        return
    from channels.layers import channel_layers

    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture(scope="session")
def django_test_db() -> Iterator[None]:
    """Django's test database (in-memory SQLite, migrated), like ``manage.py test`` builds."""
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    # Django 6.1 deprecates passing ``serialize`` (its default became None = don't); older
    # versions default to serialising the whole database, which these tests never need.
    extra: dict[str, bool] = {}
    create = connection.creation.create_test_db
    if inspect.signature(create).parameters["serialize"].default is not None:
        extra["serialize"] = False
    old_name = create(verbosity=0, autoclobber=True, **extra)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


@pytest.fixture
def db(django_test_db: None) -> Iterator[None]:
    """TransactionTestCase-style isolation: every table is emptied after the test.

    The connections that worker threads opened meanwhile (Django's per-request threads,
    asgiref's executors) are closed afterwards, as ``ChannelsLiveServerTestCase`` does: Django
    never closes connections to the in-memory test database itself.
    """
    from channels.testing.connections import ThreadConnections

    threads = ThreadConnections()
    threads.start()
    try:
        yield
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)
    finally:
        threads.stop()
