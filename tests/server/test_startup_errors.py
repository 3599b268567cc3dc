"""Startup errors an operator can make: option values, env var names, app paths and app
signatures, a lifespan startup that never answers.

Each must end in one ``channels-server: error:`` line and the documented exit code
(``test_cli_errors.py`` covers the other fatal paths of the CLI, as slow subprocess tests).
"""

from __future__ import annotations

import pytest

from server.cli import options_from_env
from server.config import Config, ConfigError
from server.importer import AppImportError, load_app
from server.types import Message
from tests.server.apps.proc import run_cli


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("channels-server: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="finite"):
        options_from_env({"CHANNELS_SERVER_TIMEOUT_GRACEFUL_SHUTDOWN": value})
    with pytest.raises(ConfigError, match="finite"):
        Config(timeout_graceful_shutdown=float(value))
    with pytest.raises(ConfigError, match="finite"):
        Config(ws_ping_interval=float(value))


def test_missing_app_dir_is_an_import_error(tmp_path: object) -> None:
    with pytest.raises(AppImportError, match="--app-dir"):
        load_app("tests.server.apps.basic:app", app_dir="/nonexistent/really-not-here")


def test_async_function_taking_only_scope_is_refused() -> None:
    from tests.server.apps import lifecycle

    with pytest.raises(AppImportError, match="neither"):
        load_app(lifecycle.one_argument)


def test_env_typo_suggests_the_right_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert options_from_env({"CHANNELS_SERVER_PROT": "9000"}) == {}
    err = capsys.readouterr().err
    assert "CHANNELS_SERVER_PROT" in err
    assert "did you mean CHANNELS_SERVER_PORT?" in err


@pytest.mark.slow
def test_cli_nan_timeout_is_one_line() -> None:
    result = run_cli(["tests.server.apps.basic:app", "--timeout-graceful-shutdown", "nan"])
    assert result.returncode == 2, result.stderr
    assert "finite" in one_error_line(result.stderr)


@pytest.mark.slow
def test_cli_missing_app_dir_is_one_line() -> None:
    result = run_cli(
        ["tests.server.apps.basic:app", "--app-dir", "/nonexistent/nope", "--port", "0"]
    )
    assert result.returncode == 2, result.stderr
    assert "/nonexistent/nope" in one_error_line(result.stderr)


@pytest.mark.slow
def test_lifespan_on_without_lifespan_support_is_one_line() -> None:
    result = run_cli(["tests.server.apps.basic:no_lifespan", "--lifespan", "on", "--port", "0"])
    assert result.returncode == 3, result.stderr
    line = one_error_line(result.stderr)
    assert "unsupported scope type 'lifespan'" in line
    assert "--lifespan" in line  # says how to run an app without lifespan support


def test_async_factory_is_refused_clearly() -> None:
    with pytest.raises(AppImportError, match="async function"):
        load_app("tests.server.apps.lifecycle:async_factory", factory=True)


async def test_awaitable_class_is_asgi3() -> None:
    from tests.server.apps import lifecycle

    app = load_app(lifecycle.AwaitableApp)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http"}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_startup_that_never_answers_is_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from server import lifespan as lifespan_module
    from server.state import ServerState
    from tests.server.apps import lifecycle

    monkeypatch.setattr(lifespan_module, "STARTUP_WARN_INTERVAL", 0.05)
    lifespan = lifespan_module.Lifespan(Config(), lifecycle.never_starts, ServerState())
    startup = asyncio.ensure_future(lifespan.startup())
    with caplog.at_level("WARNING", logger="server.error"):
        while not any("Still waiting for application startup" in r.message for r in caplog.records):
            await asyncio.wait({startup}, timeout=0.05)
            assert not startup.done()
    startup.cancel()
    await asyncio.wait({startup})
    await lifespan.abort()


@pytest.mark.slow
def test_syntax_error_names_the_full_path_and_line(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("from brokenpkg import views\napp = None\n")
    (package / "views.py").write_text("x = 1\ndef f(:\n    pass\n")
    result = run_cli(["brokenpkg:app", "--app-dir", str(tmp_path), "--port", "0"])
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert f"{package / 'views.py'}, line 2" in line, line


def test_mistyped_option_suggests_the_right_one(capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import build_config

    with pytest.raises(SystemExit) as info:
        build_config(["tests.server.apps.basic:app", "--prot", "9000"], environ={})
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unrecognized arguments: --prot 9000" in err[0]
    assert "did you mean --port?" in err[0]
