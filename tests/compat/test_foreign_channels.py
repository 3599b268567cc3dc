"""Another project's ``channels`` next to ours is refused, with the command that fixes it.

The slow test drives pip itself in a fresh virtualenv: our distribution and a stand-in for
upstream Channels (a locally built wheel named ``channels``) are installed in both orders, and
the command the error message gives is run to prove it repairs the environment.  The quick ones
put a foreign ``*.dist-info`` or package directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.wheels import build_wheel, make_venv, package_files

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "channels", "daphne", "channels_redis")


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHANNELS_SERVER_", "DJANGO_")) and k not in ("PYTHONPATH",)
    }
    env.update(extra)
    return env


def _run(python: str | Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _fake_dist_info(where: Path, name: str, version: str, owned: list[str]) -> None:
    """A ``*.dist-info`` claiming ``owned`` files, as pip leaves behind after an install."""
    info = where / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in owned))


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("channels-server: error: ")
    return lines[0]


def test_sound_install_passes() -> None:
    result = _run(
        sys.executable,
        "-c",
        "from server.installation import installation_problem; print(installation_problem())",
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


@pytest.mark.parametrize(
    ("dist", "package"),
    [("channels", "channels"), ("channels-redis", "channels_redis"), ("daphne", "daphne")],
)
def test_foreign_distribution_owning_our_files_stops_the_server(
    tmp_path: Path, dist: str, package: str
) -> None:
    _fake_dist_info(tmp_path, dist, "4.3.1", [f"{package}/__init__.py"])
    result = _run(
        sys.executable, "-m", "server", "nowhere:app", cwd=ROOT, PYTHONPATH=str(tmp_path)
    )
    assert result.returncode == 2
    line = _one_error_line(result)
    assert f"the '{dist}' distribution 4.3.1 is installed next to channels-server" in line
    assert f"pip uninstall -y {dist} && " in line
    assert "pip install --force-reinstall --no-deps" in line
    # ...and importing channels fails with the same advice, not half-working.
    result = _run(sys.executable, "-c", "import channels", cwd=ROOT, PYTHONPATH=str(tmp_path))
    assert result.returncode == 1
    assert f"RuntimeError: channels-server: the '{dist}' distribution" in result.stderr


def test_distribution_owning_other_files_is_left_alone(tmp_path: Path) -> None:
    # A distribution merely named like ours but owning nothing of our packages (say, an
    # editable install elsewhere whose files are only a .pth) is not a conflict.
    _fake_dist_info(tmp_path, "daphne", "4.1.2", ["__editable__.daphne.pth"])
    result = _run(sys.executable, "-m", "server", "nowhere:app", cwd=ROOT, PYTHONPATH=str(tmp_path))
    assert result.returncode == 2
    assert "could not import module 'nowhere'" in _one_error_line(result)


def test_a_package_shadowing_ours_stops_the_server(tmp_path: Path) -> None:
    # A project with an app of its own named "channels", served from its directory.
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "__init__.py").write_text("")
    result = _run(sys.executable, "-m", "server", "nowhere:app", cwd=tmp_path)
    assert result.returncode == 2
    line = _one_error_line(result)
    assert f"'import channels' finds {tmp_path / 'channels' / '__init__.py'}" in line
    assert str(ROOT / "channels" / "__init__.py") in line


@pytest.mark.slow
def test_pip_installing_upstream_channels_is_detected_and_the_fix_works(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    ours = build_wheel(
        wheels,
        "channels-server",
        "0.1.0",
        package_files(ROOT, *PACKAGES),
        console_scripts={"channels-server": "server.cli:main", "daphne": "server.cli:main"},
    )
    upstream = build_wheel(
        wheels,
        "channels",
        "4.3.1",
        {
            "channels/__init__.py": b'__version__ = "4.3.1"\nDEFAULT_CHANNEL_LAYER = "default"\n',
            "channels/layers.py": b"class BaseChannelLayer:\n    pass\n",
        },
    )
    python = make_venv(tmp_path / "venv")
    work = tmp_path / "work"  # away from the checkout, whose packages would be importable
    work.mkdir()

    def pip(*args: str) -> None:
        result = _run(python, "-m", "pip", "--disable-pip-version-check", *args, cwd=work)
        assert result.returncode == 0, result.stdout + result.stderr

    def server_check() -> subprocess.CompletedProcess[str]:
        # The installation check runs before the app is imported: "nowhere" not being found
        # means it passed.
        return _run(python, "-m", "server", "nowhere:app", cwd=work)

    pip("install", "--no-deps", "--no-index", str(ours))
    assert "could not import module 'nowhere'" in _one_error_line(server_check())
    assert _run(python, "-c", "import channels, channels_redis.core", cwd=work).returncode == 0

    # What `pip install channels_redis` does: upstream channels lands over our files.
    pip("install", "--no-deps", "--no-index", str(upstream))
    result = server_check()
    assert result.returncode == 2
    line = _one_error_line(result)
    assert "the 'channels' distribution 4.3.1 is installed next to channels-server" in line

    # Reinstalling ours over it restores our __init__.py, but the mix stays and is refused.
    pip("install", "--no-deps", "--no-index", "--force-reinstall", str(ours))
    result = _run(python, "-c", "import channels", cwd=work)
    assert result.returncode == 1
    assert "RuntimeError: channels-server: the 'channels' distribution 4.3.1" in result.stderr
    assert _one_error_line(server_check()) == line

    # The command in the message repairs the environment.
    fix = line.partition("Run: ")[2].partition(". Install packages")[0]
    assert fix.startswith(f"{python} -m pip uninstall -y channels && ")
    assert str(ours) in fix  # reinstalled from where it came from
    repaired = subprocess.run(
        fix, shell=True, cwd=work, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "could not import module 'nowhere'" in _one_error_line(server_check())
    result = _run(python, "-c", "import channels.layers.in_memory", cwd=work)
    assert result.returncode == 0, result.stderr
