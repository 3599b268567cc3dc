"""Run ``python -m server`` as a subprocess and follow its output line by line."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
LISTEN_RE = re.compile(r"Listening on (https?)://(\S+):(\d+)")


class ServerProcess:
    """``python -m server <args>`` with stdout+stderr merged and read by a thread."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        python_args: Sequence[str] = ("-m", "server"),
    ) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHANNELS_SERVER_")}
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, *python_args, *args],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 20.0, *, seen: bool = False) -> re.Match[str]:
        """Return the first *new* line matching ``pattern``; AssertionError on timeout/EOF.

        With ``seen=True`` lines already read count too.
        """
        rx = re.compile(pattern)
        if seen:
            for old in self.lines:
                if found := rx.search(old):
                    return found
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout}s; output:\n"
                    + "\n".join(self.lines)
                ) from None
            if line is None:
                self._queue.put(None)
                raise AssertionError(
                    f"process ended before {pattern!r}; output:\n" + "\n".join(self.lines)
                )
            self.lines.append(line)
            match = rx.search(line)
            if match:
                return match

    def wait_listening(self, timeout: float = 20.0) -> str:
        m = self.wait_for(LISTEN_RE.pattern, timeout)
        return f"{m.group(1)}://{m.group(2)}:{m.group(3)}"

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)
                break
            self.lines.append(line)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m server`` to completion (for error paths)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHANNELS_SERVER_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
