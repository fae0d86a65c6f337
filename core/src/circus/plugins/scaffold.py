"""``circus-plugin new NAME``: write a complete plugin distribution that works at once.

The project it writes installs with ``pip install -e`` and its tests pass straight away: a unit
test through the ``plugin_harness`` fixture and one against a real circusd through ``circusd`` /
``circus_plugin`` (the fixtures circus-core registers for pytest). Layout::

    circus-plugin-NAME/
        pyproject.toml          entry point NAME in the circus.plugins group
        README.md
        src/circus_plugin_NAME/__init__.py, plugin.py, py.typed
        tests/test_plugin.py

The templates are ``string.Template`` texts (``$name``...): a handful of substitutions do not
earn a template engine as a dependency of every circus install.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from string import Template

from circus import __version__

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "circus-plugin-$name"
version = "0.1.0"
description = "$summary"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["circus-core>=$core_version"]

[project.optional-dependencies]
test = ["pytest>=8.0"]

[project.entry-points."circus.plugins"]
$name = "$package.plugin:$cls"

[tool.hatch.build.targets.wheel]
packages = ["src/$package"]
"""

README = """\
# circus-plugin-$name

$summary

Install it next to circusd and enable it in the daemon's configuration:

```ini
[plugin:$name]
use = $name
```

or run it by hand against a running circusd: `circus-plugin $name`.

## Development

```sh
pip install -e '.[test]'
pytest
```

The tests use the fixtures circus-core registers for pytest (`circusd`, `circus_plugin`,
`plugin_harness`); see circus's docs/plugins.md, "Testing your plugin".
"""

INIT = '''\
"""circus plugin $name."""

from $package.plugin import $cls

__all__ = ["$cls"]
'''

SYNC_PLUGIN = '''\
"""$summary"""

from __future__ import annotations

from typing import Any

from circus.plugins import CircusPlugin


class $cls(CircusPlugin):
    """Counts the processes circusd spawns and reaps, per watcher.

    Handlers run one at a time in the plugin's handler thread: no locks needed.
    """

    name = "$name"
    required_commands = frozenset({"status", "list"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pids: dict[str, set[int]] = {}

    def handle_init(self) -> None:
        self.resync()

    def handle_gap(self, gap: Any) -> None:
        super().handle_gap(gap)
        self.resync()  # events were missed: start again from the daemon's state

    def resync(self) -> None:
        snapshot = self.snapshot()
        self.pids = {name: set(state.pids) for name, state in snapshot.watchers.items()}

    def handle_recv(self, data: tuple[str, str]) -> None:
        event = self.parse_event(data)
        if event is None:
            return
        watcher, action, payload = event
        if action == "spawn":
            self.pids.setdefault(watcher, set()).add(payload["process_pid"])
        elif action == "reap":
            self.pids.get(watcher, set()).discard(payload["process_pid"])
'''

ASYNC_PLUGIN = '''\
"""$summary"""

from __future__ import annotations

from typing import Any

from circus.plugins import AsyncCircusPlugin


class $cls(AsyncCircusPlugin):
    """Counts the processes circusd spawns and reaps, per watcher.

    Handlers are coroutines on the plugin's loop: never block in them.
    """

    name = "$name"
    required_commands = frozenset({"status", "list"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pids: dict[str, set[int]] = {}

    async def handle_init(self) -> None:
        await self.resync()

    async def handle_gap(self, gap: Any) -> None:
        super().handle_gap(gap)
        await self.resync()  # events were missed: start again from the daemon's state

    async def resync(self) -> None:
        snapshot = await self.snapshot()
        self.pids = {name: set(state.pids) for name, state in snapshot.watchers.items()}

    async def handle_recv(self, data: tuple[str, str]) -> None:
        event = self.parse_event(data)
        if event is None:
            return
        watcher, action, payload = event
        if action == "spawn":
            self.pids.setdefault(watcher, set()).add(payload["process_pid"])
        elif action == "reap":
            self.pids.get(watcher, set()).discard(payload["process_pid"])
'''

TESTS = '''\
"""Tests of the $name plugin: a unit test without a daemon, and one against a real circusd."""

from __future__ import annotations

import os
import signal

from circus.testing import wait_until

from $package.plugin import $cls


def test_follows_spawns_and_reaps(plugin_harness):
    harness = plugin_harness($cls, replies={
        "status": {"status": "ok", "statuses": {"web": "active"}},
        "list": {"status": "ok", "pids": [10]},
    })
    plugin = harness.init()
    assert plugin.pids == {"web": {10}}
    harness.event("web", "spawn", process_pid=11)
    harness.event("web", "reap", process_pid=10, exit_code=-9)
    assert plugin.pids == {"web": {11}}
    assert harness.commands() == ["status", "list"]


def test_against_a_real_circusd(circusd, circus_plugin):
    daemon = circusd("[watcher:web]\\ncmd = sleep 60\\nnumprocesses = 2\\n")
    plugin = circus_plugin($cls, daemon)
    pids = set(daemon.call("list", name="web")["pids"])
    assert plugin.pids["web"] == pids
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)  # circusd reaps it and spawns a replacement
    wait_until(lambda: victim not in plugin.pids["web"] and len(plugin.pids["web"]) == 2,
               "the reap and the respawn")
'''


class ScaffoldError(Exception):
    """Bad name or an existing target directory (a one-line message for the user)."""


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part) + "Plugin"


def scaffold(name: str, directory: Path, *, asynchronous: bool = False,
             summary: str | None = None) -> Path:
    """Write the project ``circus-plugin-NAME`` under ``directory``; returns its path."""
    name = name.strip().lower().replace("-", "_")
    if not _NAME.match(name):
        raise ScaffoldError(f"invalid plugin name {name!r}: use lowercase letters, digits and "
                            "underscores, starting with a letter")
    root = directory / f"circus-plugin-{name.replace('_', '-')}"
    if root.exists():
        raise ScaffoldError(f"{root} already exists")
    package = f"circus_plugin_{name}"
    values = {
        "name": name, "package": package, "cls": class_name(name),
        "summary": summary or f"A circus plugin: {name}.",
        "core_version": __version__,
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"src/{package}/__init__.py": INIT,
        f"src/{package}/plugin.py": ASYNC_PLUGIN if asynchronous else SYNC_PLUGIN,
        f"src/{package}/py.typed": "",
        "tests/test_plugin.py": TESTS,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
    return root


def main(argv: Sequence[str]) -> int:
    """``circus-plugin new NAME [--async] [--dir DIR] [--summary TEXT]``."""
    parser = argparse.ArgumentParser(
        prog="circus-plugin new",
        description="Write a new plugin distribution (pyproject, module, README, tests).")
    parser.add_argument("name", help="short plugin name (lowercase, digits, underscores)")
    parser.add_argument("--async", dest="asynchronous", action="store_true",
                        help="an AsyncCircusPlugin (coroutine handlers)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(),
                        help="where to create circus-plugin-NAME (default: here)")
    parser.add_argument("--summary", default=None, help="one-line description")
    args = parser.parse_args(argv)
    try:
        root = scaffold(args.name, args.dir, asynchronous=args.asynchronous,
                        summary=args.summary)
    except (ScaffoldError, OSError) as exc:
        print(f"circus-plugin new: {exc}", file=sys.stderr)
        return 1
    print(f"created {root}")
    print(f"next: cd {root} && pip install -e '.[test]' && pytest")
    return 0
