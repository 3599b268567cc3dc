"""Every fatal error path of ``python -m server``: one line on stderr, the right exit code."""

from __future__ import annotations

import socket

import pytest

from tests.server.apps.proc import run_cli

pytestmark = pytest.mark.slow


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def assert_one_line(stderr: str, needle: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("channels-server: error: "), stderr
    assert needle in lines[0], stderr


@pytest.mark.parametrize(
    ("app", "code", "needle"),
    [
        ("tests.server.apps.nope:app", 2, "could not import module 'tests.server.apps.nope'"),
        ("tests.server.apps.basic:missing", 2, "attribute 'missing' not found"),
        ("tests.server.apps.basic:value", 2, "is not callable"),
        ("tests.server.apps.basic", 2, "must look like 'module:attribute'"),
        ("tests.server.apps.broken:app", 1, "No module named 'this_dependency_is_missing'"),
    ],
)
def test_bad_app(app: str, code: int, needle: str) -> None:
    result = run_cli([app, "--port", "0"])
    assert result.returncode == code
    assert_one_line(result.stderr, needle)


def test_import_error_inside_module_mentions_debug_flag() -> None:
    result = run_cli(["tests.server.apps.broken:app", "--port", "0"])
    assert "--log-level debug" in result.stderr


def test_bad_option_value() -> None:
    result = run_cli(["tests.server.apps.basic:app", "--timeout-keep-alive", "soon"])
    assert result.returncode == 2
    assert_one_line(result.stderr, "argument --timeout-keep-alive: expected a number")


def test_bad_env_value() -> None:
    result = run_cli(["tests.server.apps.basic:app"], env={"CHANNELS_SERVER_PORT": "eighty"})
    assert result.returncode == 2
    assert_one_line(result.stderr, "CHANNELS_SERVER_PORT: expected an integer, got 'eighty'")


def test_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(["tests.server.apps.basic:app", "--port", str(port)])
    assert result.returncode == 1
    assert_one_line(result.stderr, f"cannot listen on 127.0.0.1:{port}: address already in use")


def test_startup_failed_exits_3_with_the_message() -> None:
    result = run_cli(["tests.server.apps.basic:startup_fails", "--port", "0"])
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if "channels-server: error" in line]
    assert errors == ["channels-server: error: application startup failed: database unreachable"], (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_missing_tls_file() -> None:
    result = run_cli(
        [
            "tests.server.apps.basic:app",
            "--port",
            "0",
            "--ssl-certfile",
            "/nonexistent/c.pem",
            "--ssl-keyfile",
            "/nonexistent/k.pem",
        ]
    )
    assert result.returncode == 2
    assert_one_line(result.stderr, "file not found")


def test_uds_path_that_is_a_regular_file(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "not-a-socket"
    path.write_text("keep me")
    result = run_cli(["tests.server.apps.basic:app", "--uds", str(path)])
    assert result.returncode == 1
    assert_one_line(result.stderr, "exists and is not a socket")
    assert path.read_text() == "keep me"


def test_bad_fd() -> None:
    result = run_cli(["tests.server.apps.basic:app", "--fd", "987"])
    assert result.returncode == 1
    assert_one_line(result.stderr, "--fd 987: not an open socket")


def test_help_lists_options() -> None:
    result = run_cli(["--help"])
    assert result.returncode == 0
    for flag in ("--uds", "--workers", "--limit-max-requests", "--ws-max-size", "--bind"):
        assert flag in result.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_port_in_use(workers: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            ["tests.server.apps.basic:app", "--port", "0", "--metrics-port", str(port),
             "--workers", workers, "--log-level", "warning"]
        )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "channels-server: error" in line]
    assert errors == [
        f"channels-server: error: cannot listen on 127.0.0.1:{port}: address already in use"
    ], result.stderr
    assert "Traceback" not in result.stderr
