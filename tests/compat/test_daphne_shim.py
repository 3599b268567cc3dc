"""A Channels 4 project lists "daphne" in INSTALLED_APPS; it must load and serve unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.compat.daphne_settings")
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_daphne_app_label_loads_and_runserver_is_ours() -> None:
    proc = _run(
        "import django; django.setup()\n"
        "from django.core.management import get_commands, load_command_class\n"
        "app = get_commands()['runserver']\n"
        "cmd = load_command_class(app, 'runserver')\n"
        "from channels.management.commands.runserver import Command\n"
        "print(app, isinstance(cmd, Command))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["daphne", "True"]


@pytest.mark.slow
def test_daphne_style_command_line_serves_the_project(free_port: int) -> None:
    """`daphne -b HOST -p PORT app` spelling, run through our console entry point."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.compat.daphne_settings")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from server.cli import main; sys.exit(main())",
            "-b",
            "127.0.0.1",
            "-p",
            str(free_port),
            "tests.compat.daphne_asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded by the server either listening or exiting
            if "Listening on" in line:
                break
        else:
            pytest.fail(f"server exited with {proc.wait()}")
        import httpx

        response = httpx.get(f"http://127.0.0.1:{free_port}/", timeout=10)
        assert response.status_code == 200
        assert response.text == "hello from a Channels 4 project"
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
