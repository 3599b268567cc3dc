"""Resolving the application: import strings, --factory, --app-dir, ASGI 2 adaptation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from server.importer import (
    AppImportError,
    AppLoadError,
    ASGI2Adapter,
    import_from_string,
    load_app,
)
from server.types import Message, Receive, Scope, Send
from tests.server.apps import basic


def test_module_attr() -> None:
    assert load_app("tests.server.apps.basic:app") is basic.app


def test_dotted_attribute() -> None:
    assert import_from_string("tests.server.apps.basic:app.__name__") == "app"


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("tests.server.apps.basic", "must look like 'module:attribute'"),
        (":app", "must look like"),
        ("tests.server.apps.nope:app", "could not import module 'tests.server.apps.nope'"),
        ("no_such_top_level_mod:app", "no module named 'no_such_top_level_mod'"),
        ("tests.server.apps.basic:missing", "attribute 'missing' not found"),
        ("tests.server.apps.basic:app.nothing", "attribute 'app.nothing' not found"),
    ],
)
def test_bad_paths_are_import_errors(path: str, needle: str) -> None:
    with pytest.raises(AppImportError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_app(path)


def test_not_callable() -> None:
    with pytest.raises(AppImportError, match="int is not callable"):
        load_app("tests.server.apps.basic:value")


def test_zero_argument_callable_hints_factory() -> None:
    with pytest.raises(AppImportError, match="--factory"):
        load_app("tests.server.apps.basic:not_an_app")


def test_error_inside_user_module_is_a_load_error() -> None:
    with pytest.raises(AppLoadError) as info:
        load_app("tests.server.apps.broken:app")
    message = str(info.value)
    assert "this_dependency_is_missing" in message
    assert "--log-level debug" in message
    assert "\n" not in message


def test_factory() -> None:
    assert load_app("tests.server.apps.basic:factory", factory=True) is basic.app


def test_factory_that_raises() -> None:
    def boom() -> Any:
        raise RuntimeError("no config")

    with pytest.raises(AppLoadError, match="RuntimeError: no config"):
        load_app(boom, factory=True)


def test_app_dir(tmp_path: Path) -> None:
    (tmp_path / "appdir_mod_xyz.py").write_text(
        "async def application(scope, receive, send):\n    pass\n"
    )
    try:
        app = load_app("appdir_mod_xyz:application", app_dir=str(tmp_path))
        assert getattr(app, "__name__", None) == "application"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("appdir_mod_xyz", None)


async def test_asgi2_class_is_adapted() -> None:
    seen: list[Message] = []

    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send({"type": "x", "path": self.scope["path"]})

    async def send(message: Message) -> None:
        seen.append(message)

    async def receive() -> Message:
        return {}

    app = load_app(Legacy)
    assert isinstance(app, ASGI2Adapter)
    await app({"path": "/p"}, receive, send)
    assert seen == [{"type": "x", "path": "/p"}]


def test_asgi3_callables_are_not_wrapped() -> None:
    class App:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            pass

    instance = App()
    assert load_app(instance) is instance


def test_partial_and_asgi2_function() -> None:
    import functools

    async def three(prefix: str, scope: Scope, receive: Receive, send: Send) -> None:
        pass

    bound = functools.partial(three, "x")
    assert load_app(bound) is bound

    def legacy(scope: Scope) -> Any:
        async def inner(receive: Receive, send: Send) -> None:
            pass

        return inner

    assert isinstance(load_app(legacy), ASGI2Adapter)
