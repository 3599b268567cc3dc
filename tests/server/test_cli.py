"""CLI parsing: flags, Daphne aliases, env vars and their precedence, and error reporting."""

from __future__ import annotations

from typing import Any

import pytest

from server.cli import build_config, build_parser, main, options_from_env, parse_value
from server.config import Config, ConfigError

APP = "tests.server.apps.basic:app"


def cfg(*argv: str, env: dict[str, str] | None = None) -> Config:
    return build_config([*argv], env or {})


def test_defaults_come_from_config() -> None:
    c = cfg(APP)
    assert c.app == APP
    assert c == Config(app=APP)


def test_every_config_field_has_a_flag_or_is_internal() -> None:
    parser = build_parser()
    dests = {a.dest for a in parser._actions}
    fields = set(Config.__dataclass_fields__) - {"extra"}
    assert fields <= dests, fields - dests


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--host", "0.0.0.0"], {"host": "0.0.0.0"}),
        (["-b", "::1"], {"host": "::1"}),
        (["--bind", "10.0.0.1"], {"host": "10.0.0.1"}),
        (["-p", "9001"], {"port": 9001}),
        (["-u", "/tmp/x.sock"], {"uds": "/tmp/x.sock"}),
        (["--unix-socket", "/tmp/y.sock"], {"uds": "/tmp/y.sock"}),
        (["--fd", "7"], {"fd": 7}),
        (["--ping-interval", "3"], {"ws_ping_interval": 3.0}),
        (["--ws-ping-interval", "none"], {"ws_ping_interval": None}),
        (["--ping-timeout", "4.5"], {"ws_ping_timeout": 4.5}),
        (["--websocket_connect_timeout", "2"], {"ws_connect_timeout": 2.0}),
        (["--application-close-timeout", "7"], {"application_close_timeout": 7.0}),
        (["--proxy-headers"], {"proxy_headers": True}),
        (
            ["--forwarded-allow-ips", "10.0.0.1, 10.0.0.2"],
            {"forwarded_allow_ips": ("10.0.0.1", "10.0.0.2")},
        ),
        (["--no-access-log"], {"access_log": False}),
        (
            ["--access-log=/tmp/access.log"],
            {"access_log_file": "/tmp/access.log", "access_log": True},
        ),
        (["--no-server-header"], {"server_header": False}),
        (["--no-server-name"], {"server_header": False}),
        (["-s", "edge"], {"server_name": "edge"}),
        (["--no-date-header"], {"date_header": False}),
        (["--ws-per-message-deflate"], {"ws_per_message_deflate": True}),
        (["--lifespan", "ON"], {"lifespan": "on"}),
        (["--loop", "asyncio"], {"loop": "asyncio"}),
        (["--workers", "3"], {"workers": 3}),
        (
            [
                "--limit-concurrency",
                "10",
                "--limit-max-requests",
                "5",
                "--limit-max-requests-jitter",
                "2",
            ],
            {"limit_concurrency": 10, "limit_max_requests": 5, "limit_max_requests_jitter": 2},
        ),
        (["--log-level", "trace"], {"log_level": "trace"}),
        (["-v", "2"], {"log_level": "debug"}),
        (["-v", "0", "--log-level", "error"], {"log_level": "error"}),
        (["--factory", "--app-dir", "src"], {"factory": True, "app_dir": "src"}),
        (["--health-check-path", "/healthz"], {"health_check_path": "/healthz"}),
        (["--root-path", "/api"], {"root_path": "/api"}),
    ],
)
def test_flags_and_aliases(argv: list[str], expected: dict[str, object]) -> None:
    c = cfg(*argv, APP)
    for name, value in expected.items():
        assert getattr(c, name) == value, name


def test_env_vars_override_defaults_and_flags_override_env() -> None:
    env = {
        "CHANNELS_SERVER_PORT": "9000",
        "CHANNELS_SERVER_ACCESS_LOG": "no",
        "CHANNELS_SERVER_PROXY_HEADERS": "yes",
        "CHANNELS_SERVER_LIMIT_CONCURRENCY": "50",
        "CHANNELS_SERVER_WS_PING_INTERVAL": "none",
        "CHANNELS_SERVER_APP": APP,
    }
    c = cfg(env=env)
    assert (c.port, c.access_log, c.proxy_headers, c.limit_concurrency, c.app) == (
        9000,
        False,
        True,
        50,
        APP,
    )
    assert c.ws_ping_interval is None
    c = cfg("--port", "9100", "--access-log", "other:app", env=env)
    assert (c.port, c.access_log, c.app) == (9100, True, "other:app")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("false", False), ("No", False)],
)
def test_env_booleans(raw: str, value: bool) -> None:
    assert options_from_env({"CHANNELS_SERVER_DATE_HEADER": raw}) == {"date_header": value}


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="CHANNELS_SERVER_WORKERS: expected an integer"):
        cfg(APP, env={"CHANNELS_SERVER_WORKERS": "many"})
    with pytest.raises(ConfigError, match="CHANNELS_SERVER_ACCESS_LOG: expected a boolean"):
        cfg(APP, env={"CHANNELS_SERVER_ACCESS_LOG": "maybe"})


def test_unknown_env_var_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    cfg(APP, env={"CHANNELS_SERVER_PROT": "1"})
    assert "ignoring unknown environment variable CHANNELS_SERVER_PROT" in capsys.readouterr().err


def test_parse_value_rejects_bad_choices() -> None:
    with pytest.raises(ValueError, match="expected one of auto, on, off"):
        parse_value("lifespan", "sometimes")
    with pytest.raises(ValueError, match="expected a number"):
        parse_value("timeout_keep_alive", "soon")


def test_config_validation_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="--port must be between"):
        cfg(APP, "--port", "70000")
    with pytest.raises(ConfigError, match="--ssl-certfile and --ssl-keyfile"):
        cfg(APP, "--ssl-certfile", "cert.pem")
    with pytest.raises(ConfigError, match="missing the application"):
        cfg()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--port", "abc", APP], "argument --port/-p: expected an integer, got 'abc'"),
        (["--lifespan", "maybe", APP], "expected one of auto, on, off"),
        (["--no-such-flag", APP], "unrecognized arguments: --no-such-flag"),
        (["--workers", "0", APP], "--workers must be positive"),
        ([], "missing the application"),
    ],
)
def test_main_reports_one_line_and_exits_2(
    argv: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("CHANNELS_SERVER_")]:
        monkeypatch.delenv(key)
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("channels-server: error: ")
    assert needle in err[0]


@pytest.mark.parametrize("name", ["bad\r\nX-Injected: 1", "nul\x00", "snow\u2603"])
def test_server_name_that_would_split_a_header_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="--server-name"):
        Config(server_name=name)


# --- operations options: --header, --env-file, --log-config, --reload*, --metrics-*, json log ---
def test_header_is_repeatable_and_keeps_commas() -> None:
    c = cfg(APP, "--header", "X-A: 1, 2", "--header", "x-b:two")
    assert c.headers == ("X-A: 1, 2", "x-b:two")
    assert c.header_lines == b"x-a: 1, 2\r\nx-b: two\r\n"


def test_headers_env_var_has_one_header_per_line() -> None:
    c = cfg(APP, env={"CHANNELS_SERVER_HEADERS": "X-A: 1, 2\nX-B: 3\n"})
    assert c.headers == ("X-A: 1, 2", "X-B: 3")


def test_reload_and_metrics_options() -> None:
    c = cfg(
        APP,
        "--reload",
        "--reload-dir",
        "src",
        "--reload-dir",
        "lib",
        "--reload-include",
        "*.html",
        "--reload-exclude",
        "build",
        "--metrics-port",
        "9100",
        "--metrics-host",
        "0.0.0.0",
        "--metrics-path",
        "/metrics",
        "--access-log-format",
        "JSON",
    )
    assert c.reload and c.reload_dirs == ("src", "lib")
    assert c.reload_includes == ("*.html",) and c.reload_excludes == ("build",)
    assert (c.metrics_port, c.metrics_host, c.metrics_path) == (9100, "0.0.0.0", "/metrics")
    assert c.metrics_enabled and c.access_log_format == "json"
    env = cfg(APP, env={"CHANNELS_SERVER_RELOAD_DIRS": "a,b", "CHANNELS_SERVER_METRICS_PORT": "1"})
    assert env.reload_dirs == ("a", "b") and env.metrics_port == 1
    assert not cfg(APP).metrics_enabled


def test_env_file_sets_options_and_environment_wins(tmp_path: Any) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text(
        "# comment\nCHANNELS_SERVER_TIMEOUT_KEEP_ALIVE=7\nCHANNELS_SERVER_PORT=9000\n"
        "export CHANNELS_SERVER_BACKLOG='99'\n"
    )
    c = cfg(APP, "--env-file", str(env_file), env={"CHANNELS_SERVER_PORT": "9001"})
    assert c.timeout_keep_alive == 7 and c.backlog == 99
    assert c.port == 9001  # already in the environment: the file does not override it
    flags_win = cfg(APP, "--env-file", str(env_file), "--timeout-keep-alive", "8")
    assert flags_win.timeout_keep_alive == 8
    from_env = cfg(APP, env={"CHANNELS_SERVER_ENV_FILE": str(env_file)})
    assert from_env.timeout_keep_alive == 7


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--header", "no-colon", APP], "--header must look like 'name:value'"),
        (["--header", "bad name: 1", APP], "--header name 'bad name' is not a valid field name"),
        (["--header", "X-A: a\x00b", APP], "value must be printable latin-1 text"),
        (["--header", "Content-Length: 1", APP], "--header Content-Length: set by the server"),
        (["--header", "Server: x", APP], "use --server-name"),
        (["--access-log-format", "xml", APP], "expected one of text, json"),
        (["--metrics-port", "70000", APP], "--metrics-port must be between 0 and 65535"),
        (["--metrics-path", "metrics", APP], "--metrics-path must start with '/'"),
        (
            ["--metrics-path", "/h", "--health-check-path", "/h", APP],
            "--metrics-path and --health-check-path must differ",
        ),
        (["--reload", "--workers", "2", APP], "--reload cannot be combined with --workers > 1"),
        (["--env-file", "/nonexistent/.env", APP], "--env-file /nonexistent/.env: no such file"),
        (["--log-config", "/nonexistent.json", APP], "--log-config /nonexistent.json: no such"),
    ],
)
def test_operations_options_report_one_line(
    argv: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_main_reports_one_line_and_exits_2(argv, needle, capsys, monkeypatch)
