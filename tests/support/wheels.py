"""Build small wheels and virtualenvs locally, for tests of what pip does to an environment.

``build_wheel`` writes a real wheel (a zip with ``*.dist-info/METADATA``, ``WHEEL``, ``RECORD``
and optional console scripts), so ``pip install`` treats it exactly as one from an index: it
overwrites files other distributions own, records them, removes them on uninstall.  No network
and no build backend are involved.  ``package_files`` collects a source package as wheel
contents.  ``make_venv`` creates a virtualenv without pip whose ``site-packages`` also sees the
running test environment's (for Django, h11, pip itself, ...), through a ``.pth`` file.
"""

from __future__ import annotations

import base64
import hashlib
import site
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Mapping
from pathlib import Path


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    console_scripts: Mapping[str, str] | None = None,
) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` holding ``files`` into ``dest``."""
    stem = name.replace("-", "_")
    dist_info = f"{stem}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    ).encode()
    contents[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests.support.wheels\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    if console_scripts:
        lines = "".join(f"{script} = {target}\n" for script, target in console_scripts.items())
        contents[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{lines}".encode()
    record = [f"{path},{_digest(data)},{len(data)}" for path, data in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
    return wheel


def _digest(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def package_files(root: Path, *packages: str) -> dict[str, bytes]:
    """The ``.py`` and ``py.typed`` files of ``packages`` under ``root``, keyed by wheel path."""
    files: dict[str, bytes] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*")):
            wanted = path.suffix == ".py" or path.name == "py.typed"
            if wanted and path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def make_venv(path: Path) -> Path:
    """A virtualenv at ``path`` (no pip of its own); returns its python executable."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120
    )
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    # Appended after the venv's own site-packages, so what the test installs there wins.
    ours = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    (Path(purelib) / "test_environment.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    return python
