"""--log-config (JSON / YAML / ini) and --access-log-format json."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from server.config import Config, ConfigError
from server.logging_setup import configure_logging
from tests.server.apps.proc import ServerProcess


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    configure_logging(Config())
    logging.getLogger("tests.custom").handlers.clear()


DICT_CONFIG = {
    "version": 1,
    "formatters": {"bare": {"format": "CUSTOM %(name)s %(message)s"}},
    "handlers": {"file": {"class": "logging.FileHandler", "formatter": "bare", "filename": ""}},
    "loggers": {"tests.custom": {"handlers": ["file"], "level": "DEBUG"}},
}


def test_json_log_config(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    config = json.loads(json.dumps(DICT_CONFIG))
    config["handlers"]["file"]["filename"] = str(out)
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    configure_logging(Config(log_config=str(path)))
    logging.getLogger("tests.custom").debug("hello")
    # Our own loggers keep working (existing loggers are not disabled by default).
    assert not logging.getLogger("server.error").disabled
    logging.shutdown()
    assert out.read_text() == "CUSTOM tests.custom hello\n"


def test_yaml_log_config(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    out = tmp_path / "out.log"
    config = json.loads(json.dumps(DICT_CONFIG))
    config["handlers"]["file"]["filename"] = str(out)
    for ext in (".yaml", ".yml"):
        path = tmp_path / f"logging{ext}"
        path.write_text(yaml.safe_dump(config))
        configure_logging(Config(log_config=str(path)))
        assert logging.getLogger("tests.custom").level == logging.DEBUG


def test_ini_log_config(tmp_path: Path) -> None:
    path = tmp_path / "logging.ini"
    path.write_text(
        "[loggers]\nkeys=root,custom\n\n[handlers]\nkeys=null\n\n[formatters]\nkeys=\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=null\n\n"
        "[logger_custom]\nlevel=ERROR\nhandlers=null\nqualname=tests.custom\n\n"
        "[handler_null]\nclass=NullHandler\nargs=()\n"
    )
    configure_logging(Config(log_config=str(path)))
    assert logging.getLogger("tests.custom").level == logging.ERROR


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("bad.json", "{not json", "--log-config"),
        ("list.json", "[1, 2]", "expected a mapping at the top level"),
        ("noversion.json", "{}", "dictionary doesn't specify a version"),
        ("bad.ini", "[loggers]\nkeys=x\n", "--log-config"),
        ("bad.yaml", "a: [1,", "invalid YAML"),
    ],
)
def test_bad_log_config_is_a_config_error(
    tmp_path: Path, name: str, content: str, needle: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match="--log-config") as info:
        configure_logging(Config(log_config=str(path)))
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_json_access_log_per_request_and_per_websocket_session() -> None:
    proc = ServerProcess(
        ["tests.server.apps.metered:app", "--port", "0", "--access-log-format", "json"]
    )
    try:
        base = proc.wait_listening()
        assert httpx.get(base + "/a?b=1").text == "ok"
        line = proc.wait_for(r'^\{"time"').string
        request = json.loads(line)
        assert request["type"] == "http"
        assert request["method"] == "GET" and request["path"] == "/a?b=1"
        assert request["status"] == 200 and request["http_version"] == "1.1"
        assert request["client"].startswith("127.0.0.1:")
        assert request["duration_ms"] >= 0
        with ws_connect(base.replace("http", "ws") + "/chat") as ws:
            ws.send("close:4005")
            with pytest.raises(Exception, match="4005"):
                ws.recv()
        session = json.loads(proc.wait_for(r'^\{"time"').string)
        assert session["type"] == "websocket" and session["path"] == "/chat"
        assert session["status"] == 101 and session["close_code"] == 4005
        assert session["duration_ms"] >= 0
        proc.signal()
        assert proc.wait_exit() == 0
    finally:
        proc.close()
