"""--reload: a real server process restarted on a file change, on the same socket."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from server.config import Config
from server.reload import make_filter, watch_dirs
from tests.server.apps.proc import ServerProcess

APP_SOURCE = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"{version}"}})
"""


def test_filter_includes_and_excludes(tmp_path: Path) -> None:
    accept = make_filter([tmp_path], ["*.py", "*.html"], [".*", "__pycache__", "*.pyc"])
    assert accept(None, str(tmp_path / "app.py"))
    assert accept(None, str(tmp_path / "templates" / "page.html"))
    assert not accept(None, str(tmp_path / "notes.txt"))
    assert not accept(None, str(tmp_path / ".venv" / "lib" / "x.py"))
    assert not accept(None, str(tmp_path / "pkg" / "__pycache__" / "x.py"))
    assert not accept(None, str(tmp_path / "x.pyc"))


def test_default_dirs_are_cwd_and_app_dir(tmp_path: Path) -> None:
    assert watch_dirs(Config(app="a:b", reload=True)) == [Path.cwd().resolve()]
    dirs = watch_dirs(Config(app="a:b", reload=True, app_dir=str(tmp_path)))
    assert tmp_path.resolve() in dirs
    assert watch_dirs(Config(app="a:b", reload_dirs=(str(tmp_path),))) == [tmp_path.resolve()]


def get_until(url: str, body: str, timeout: float = 30.0) -> None:
    """Poll until the server answers ``body`` (connection errors allowed meanwhile)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=5).text
        except httpx.HTTPError as exc:
            last = exc
        if last == body:
            return
        time.sleep(0.1)  # polling another process: there is no event to await
    raise AssertionError(f"never answered {body!r}; last: {last!r}")


@pytest.mark.slow
def test_restarts_on_a_file_change(tmp_path: Path) -> None:
    module = tmp_path / "reloadapp.py"
    module.write_text(APP_SOURCE.format(version="v1"))
    proc = ServerProcess(
        [
            "reloadapp:app",
            "--app-dir",
            str(tmp_path),
            "--reload",
            "--reload-dir",
            str(tmp_path),
            "--port",
            "0",
            "--lifespan",
            "off",
        ]
    )
    try:
        base = proc.wait_listening()
        first = proc.wait_for(r"Started server process \[(\d+)\]", seen=True).group(1)
        assert httpx.get(base + "/").text == "v1"
        (tmp_path / "notes.txt").write_text("not a reason to restart")
        module.write_text(APP_SOURCE.format(version="v2"))
        proc.wait_for(r"Detected changes in .*reloadapp\.py: restarting")
        second = proc.wait_for(r"Started server process \[(\d+)\]").group(1)
        assert second != first
        get_until(base + "/", "v2")
        assert "notes.txt" not in proc.output
        proc.signal()
        assert proc.wait_exit() == 0
        assert "Reloader" in proc.output and "finished" in proc.output
    finally:
        proc.close()


@pytest.mark.slow
def test_a_broken_edit_waits_for_the_next_change(tmp_path: Path) -> None:
    module = tmp_path / "reloadapp.py"
    module.write_text(APP_SOURCE.format(version="v1"))
    proc = ServerProcess(
        ["reloadapp:app", "--app-dir", str(tmp_path), "--reload", "--reload-dir", str(tmp_path),
         "--port", "0", "--lifespan", "off"]
    )  # fmt: skip
    try:
        base = proc.wait_listening()
        module.write_text("this is not python(")
        proc.wait_for(r"Detected changes")
        proc.wait_for(r"error")  # the child reports the import error and exits
        module.write_text(APP_SOURCE.format(version="v3"))
        get_until(base + "/", "v3")
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()


ENV_APP_SOURCE = """
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = (os.environ.get("RELOAD_TEST_MARKER", "unset") + "-{version}").encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})
"""


@pytest.mark.slow
def test_programmatic_run_with_reload_and_env_file(tmp_path: Path) -> None:
    module = tmp_path / "reloadapp.py"
    module.write_text(ENV_APP_SOURCE.format(version="p1"))
    env_file = tmp_path / "app.env"
    env_file.write_text("RELOAD_TEST_MARKER=from-env-file\n")
    code = (
        f"import server; server.run('reloadapp:app', port=0, reload=True, "
        f"reload_dirs=({str(tmp_path)!r},), lifespan='off', env_file={str(env_file)!r}, "
        f"app_dir={str(tmp_path)!r})"
    )
    proc = ServerProcess([], python_args=["-c", code])
    try:
        base = proc.wait_listening()
        assert httpx.get(base + "/").text == "from-env-file-p1"
        module.write_text(ENV_APP_SOURCE.format(version="p2"))
        get_until(base + "/", "from-env-file-p2")
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()
