"""The HTTP/2 options: flags, environment variables, validation (ALPN: test_h2_tls.py)."""

from __future__ import annotations

import pytest

from server.cli import build_config
from server.config import Config, ConfigError
from tests.server.apps import h2app


def test_flags_and_environment() -> None:
    config = build_config(["m:app"], environ={})
    assert (config.http2, config.http2_max_concurrent_streams, config.http2_send_timeout) == (
        True,
        100,
        30.0,
    )
    config = build_config(
        ["m:app", "--no-http2", "--http2-max-concurrent-streams", "7", "--http2-send-timeout", "2"],
        environ={},
    )
    assert (config.http2, config.http2_max_concurrent_streams, config.http2_send_timeout) == (
        False,
        7,
        2.0,
    )
    env = {"CHANNELS_SERVER_HTTP2": "0", "CHANNELS_SERVER_HTTP2_MAX_CONCURRENT_STREAMS": "3"}
    config = build_config(["m:app"], environ=env)
    assert not config.http2 and config.http2_max_concurrent_streams == 3
    # Flags win over the environment.
    assert build_config(["m:app", "--http2"], environ=env).http2


@pytest.mark.parametrize(
    "options",
    [
        {"http2_max_concurrent_streams": 0},
        {"http2_send_timeout": 0},
        {"http2_send_timeout": float("nan")},
    ],
)
def test_bad_values_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Config(app=h2app.app, **options)
