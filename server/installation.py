"""Refuse to start on a mixed install: another project's ``channels`` next to ours.

channels-server ships packages named ``channels``, ``daphne`` and ``channels_redis``, but pip
only knows it as the distribution ``channels-server``.  Installing anything that requires
``channels`` (``channels_redis``, ``djangochannelsrestframework``, ...) therefore also installs
upstream Channels, which overwrites our files (a silent mix of both) or, with an editable
install, shadows our package.  Either way nothing tells the user until something odd happens,
so the CLI checks before importing the application, and ``channels/__init__.py`` checks on
import.  Only ``importlib.metadata`` and ``importlib.util.find_spec`` are used: ``channels``
itself is never imported here (it may be the foreign one).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shlex
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

OUR_DISTRIBUTION = "channels-server"
# Our packages that carry another project's name -> the distribution of that project.
COMPAT_PACKAGES = {"channels": "channels", "daphne": "daphne", "channels_redis": "channels-redis"}

README_SECTION = 'README, "Packages that depend on channels"'


def installation_problem() -> str | None:
    """One line saying what is wrong and what to run, or None when the install is sound."""
    for package, dist_name in COMPAT_PACKAGES.items():
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if _owns(dist, package):
            return (
                f"the {dist_name!r} distribution {dist.version} is installed next to "
                f"{OUR_DISTRIBUTION} and replaces or shadows its own {package!r} package. "
                f"Run: {_fix(dist_name)}. Install packages that require {dist_name!r} with "
                f"'pip install --no-deps' ({README_SECTION})"
            )
    ours = Path(__file__).resolve().parent.parent
    for package in COMPAT_PACKAGES:
        expected = ours / package / "__init__.py"
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin is None or not Path(origin).is_file():
            return (
                f"{OUR_DISTRIBUTION}'s {package!r} package is missing or incomplete "
                f"({expected} not found). Run: {_reinstall()}"
            )
        if Path(origin).resolve() != expected:
            return (
                f"'import {package}' finds {origin}, not {OUR_DISTRIBUTION}'s {expected}: "
                f"rename or remove that package, or take its directory off sys.path/PYTHONPATH"
            )
    return None


def _owns(dist: importlib.metadata.Distribution, package: str) -> bool:
    files = dist.files
    if files is None:  # no RECORD: it claims the name, assume the worst
        return True
    return any(file.parts and file.parts[0] == package for file in files)


def _pip(*args: str) -> str:
    return " ".join(shlex.quote(part) for part in (sys.executable, "-m", "pip", *args))


def _fix(foreign: str) -> str:
    # Uninstalling the foreign distribution deletes the files it wrote, ours among them when it
    # overwrote them: reinstalling ours afterwards restores them.
    return f"{_pip('uninstall', '-y', foreign)} && {_reinstall()}"


def _reinstall() -> str:
    return _pip("install", "--force-reinstall", "--no-deps", *_reinstall_target())


def _reinstall_target() -> list[str]:
    """How channels-server was installed (PEP 610 direct_url.json), to reinstall the same."""
    # A source checkout's channels_server.egg-info (on sys.path from the cwd) comes first and
    # says nothing: the installed dist-info next to it does.
    found = (
        d.read_text("direct_url.json")
        for d in importlib.metadata.distributions(name=OUR_DISTRIBUTION)
    )
    raw = next((text for text in found if text), None)
    if not raw:
        return [OUR_DISTRIBUTION]
    try:
        info = json.loads(raw)
        url = str(info["url"])
    except (ValueError, KeyError, TypeError):
        return [OUR_DISTRIBUTION]
    if url.startswith("file://"):
        path = unquote(urlparse(url).path)
        editable = bool(info.get("dir_info", {}).get("editable"))
        return ["-e", path] if editable else [path]
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        commit = vcs.get("commit_id")
        return [f"{vcs['vcs']}+{url}" + (f"@{commit}" if commit else "")]
    return [url]
