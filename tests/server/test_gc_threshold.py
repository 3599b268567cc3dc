"""The collector's first threshold (server.gc_threshold): CPython 3.13's default applied at
start-up on older interpreters, an application's own choice kept."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest

from server.gc_threshold import FIRST_THRESHOLD, OLD_DEFAULT, adopt_313_threshold
from tests.server.apps.proc import ServerProcess


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_the_old_default_is_raised() -> None:
    gc.set_threshold(*OLD_DEFAULT)
    assert adopt_313_threshold() is True
    assert gc.get_threshold() == (FIRST_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_thresholds_someone_chose_are_kept() -> None:
    gc.set_threshold(5000, 20, 20)
    assert adopt_313_threshold() is False
    assert gc.get_threshold() == (5000, 20, 20)


def _served_threshold(app: str) -> str:
    proc = ServerProcess([app, "--port", "0"])
    try:
        base = proc.wait_listening()
        return httpx.get(base + "/gc").text
    finally:
        proc.close()


@pytest.mark.slow
def test_the_server_process_runs_with_the_313_threshold() -> None:
    assert _served_threshold("tests.server.apps.basic:app") == repr((FIRST_THRESHOLD, 10, 10))


@pytest.mark.slow
def test_an_application_setting_its_own_threshold_keeps_it() -> None:
    assert _served_threshold("tests.server.apps.gc_custom:app") == repr((1234, 5, 5))
