"""Driving a terminal program as a person would: in tmux, sending keys, reading the screen.

Each :class:`TmuxSession` runs its own tmux server (``-L`` socket named per session), so tests
never touch each other's sessions or a developer's. :meth:`TmuxSession.close` ends the program
by its pid (and its descendants), then the tmux server by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid

from support import kill_tree, wait_dead

TIMEOUT = 30.0
#: what a missing tmux says (the ``tmux`` fixture skips locally, fails in CI: ``missing_part``)
NO_TMUX = "needs tmux (python3 dev.py installs it with apt-get when run as root)"


def have_tmux() -> bool:
    return shutil.which("tmux") is not None


class TmuxSession:
    """One program in a detached tmux session of a private tmux server."""

    def __init__(self, command: str, *, width: int = 120, height: int = 40,
                 name: str = "test") -> None:
        self.socket = f"circus-test-{uuid.uuid4().hex[:8]}"
        self.name = name
        self.run("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), command)
        # keys sent one call apart must not merge into Meta sequences (Esc then n)
        self.run("set-option", "-s", "escape-time", "0")
        self.server_pid = int(self.run("display-message", "-p", "#{pid}").strip())
        self.pane_pid = int(self.run("display-message", "-p", "-t", name, "#{pane_pid}").strip())

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True, text=True, timeout=TIMEOUT, check=True,
        )  # fmt: skip
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def send(self, *keys: str) -> None:
        """tmux key names (``Enter``, ``Escape``) or literal text, in order."""
        self.run("send-keys", "-t", self.name, *keys)

    def wait_screen(self, *needles: str, absent: tuple[str, ...] = (),
                    timeout: float = TIMEOUT) -> str:
        """The screen once it shows every needle and none of ``absent`` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(n in screen for n in needles) and not any(a in screen for a in absent):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"never showed {needles} without {absent}; the screen:\n{screen}")
            time.sleep(0.2)

    def program_ended(self, timeout: float = TIMEOUT) -> bool:
        return wait_dead(self.pane_pid, timeout)

    def close(self) -> None:
        kill_tree(self.pane_pid)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.run("kill-server")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.server_pid, signal.SIGKILL)
        wait_dead(self.server_pid, 10)

    def __enter__(self) -> TmuxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
