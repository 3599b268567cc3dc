"""The peers' own virtualenv (``benchmarks/.venv-peers``, gitignored), created on first use.

Upstream Channels lives there, never in the project's venv, so ``import channels`` means
upstream for the peers and this repository for our server.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.servers import BENCH_DIR, PEERS_PYTHON, PEERS_VENV

REQUIREMENTS = BENCH_DIR / "peers-requirements.txt"
MARKER = PEERS_VENV / ".installed-requirements.sha256"
DISTRIBUTIONS = (
    "uvicorn",
    "uvloop",
    "httptools",
    "websockets",
    "wsproto",
    "h11",
    "daphne",
    "twisted",
    "channels",
    "channels-redis",
    "hypercorn",
    "granian",
    "django",
    "asgiref",
    "matplotlib",
)


def _digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ready() -> bool:
    return PEERS_PYTHON.exists() and MARKER.exists() and MARKER.read_text() == _digest()


def ensure() -> None:
    """Create/refresh the venv with pip if the requirements changed; raises on failure."""
    if ready():
        return
    print(f"installing peers into {PEERS_VENV} (one time, needs PyPI) ...", flush=True)
    if not PEERS_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, timeout=300)
    done = subprocess.run(
        [
            str(PEERS_PYTHON),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError("pip install of the peers failed:\n" + done.stderr.strip()[-1500:])
    MARKER.write_text(_digest())


def versions() -> dict[str, str]:
    """Installed versions of the peers' distributions (empty if the venv is missing)."""
    if not PEERS_PYTHON.exists():
        return {}
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        f"for name in {list(DISTRIBUTIONS)!r}:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(PEERS_PYTHON), "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        return {}
    result: dict[str, str] = json.loads(done.stdout)
    return result


def draw(script: str, json_path: Path, png_path: Path) -> str | None:
    """Run ``benchmarks/<script>`` with the peers' interpreter (matplotlib lives there) to
    draw ``png_path`` from ``json_path``; the end of its error output if it failed."""
    done = subprocess.run(
        [str(PEERS_PYTHON), str(BENCH_DIR / script), str(json_path), str(png_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return None if done.returncode == 0 else done.stderr.strip()[-400:]


def has_matplotlib() -> bool:
    if not PEERS_PYTHON.exists():
        return False
    done = subprocess.run(
        [str(PEERS_PYTHON), "-c", "import matplotlib"], capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0
