"""The README's plugin example works as written.

The code blocks marked ``<!-- readme-example: PATH -->`` in README.md are written to a temporary
project, installed with pip into a private target folder (so the shared venv is untouched), and
circusd runs the README's config with that folder on its path: the plugin is found by its short
name through its entry point, and a ``kill -9`` produces the line the README promises.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from circus.testing import CircusdProcess, EventCollector

ROOT = Path(__file__).resolve().parents[1]
MARKED_BLOCK = re.compile(r"<!-- readme-example: (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)


def readme_files() -> dict[str, str]:
    files = dict(MARKED_BLOCK.findall((ROOT / "README.md").read_text()))
    assert set(files) == {"crashalert/__init__.py", "pyproject.toml", "circus.ini"}, files
    return files


def line_after(path: Path, size: int, timeout: float) -> str | None:
    """The first new line the plugin appended past ``size`` bytes, or None (bounded wait)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size > size:
            text = path.read_text()[size:]
            if text.endswith("\n"):
                return text
        time.sleep(0.02)
    return None


def test_readme_plugin_example_runs_under_circusd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = readme_files()
    project = tmp_path / "project"
    for name, text in files.items():
        if name != "circus.ini":
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            (project / name).write_text(text)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(project)],
        check=True,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *sys.path[1:]]))

    run_dir = tmp_path / "run"
    log = run_dir / "crashes.log"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)  # circusd, and so its children, resolve `crashes.log` here
    with CircusdProcess(files["circus.ini"], run_dir, env=env) as daemon, \
            EventCollector(daemon.pubsub_endpoint) as events:
        events.wait_ready(daemon, "web")
        assert daemon.call("status", name="plugin:alerts")["status"] == "active"
        # The plugin's subscription is set up after circusd started it (ZeroMQ's slow joiner):
        # an exit before that is not seen. Kill until one is reported, a bounded number of times.
        for _attempt in range(15):
            victim = daemon.call("list", name="web")["pids"][0]
            size = log.stat().st_size if log.exists() else 0
            os.kill(victim, signal.SIGKILL)
            _topic, reap = events.wait_for(
                lambda t, p, v=victim: t == "watcher.web.reap" and p["process_pid"] == v,
                timeout=20,
            )
            assert reap["expected"] is False
            text = line_after(log, size, timeout=2.0)
            if text is not None:
                break
        else:
            raise AssertionError("the plugin never reported an exit")

    # numprocesses counts live processes (as 0.19 does): the plugin's call may be answered
    # before circusd has spawned the replacement (1) or after (2)
    assert re.fullmatch(rf"web: pid {victim} exited with -9, [12] process\(es\) now\n", text)
