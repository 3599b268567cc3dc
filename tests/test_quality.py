"""The code-quality gates run as tests so that CI enforces them on every submission."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Every package the distribution ships (pyproject's packages.find).
PACKAGES = ("server", "channels", "daphne", "channels_redis")


def _tool(name: str) -> str:
    exe = BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is in the 'test' extra)")
    return found


@pytest.mark.slow
def test_ruff_clean() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", *PACKAGES, "tests", "benchmarks", "examples"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_mypy_strict_clean() -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--strict", *PACKAGES],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _readme_test_command() -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [ln for ln in lines if ln.startswith("python3 -m venv .venv && ")]
    assert len(commands) >= 2, "README must start with the run command and the test command"
    return commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == _readme_test_command()


def test_test_toolchain_is_pinned() -> None:
    """Every test-extra package is pinned with == in the constraints file the command uses."""
    import re
    import tomllib

    command = _readme_test_command()
    assert "-c constraints/test.txt" in command
    pins = {}
    for line in (ROOT / "constraints" / "test.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned with ==: {line!r}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["optional-dependencies"]["test"] + project["dependencies"]
    for requirement in wanted:
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} is not pinned"
