"""The daemon's current state, for a plugin that starts late or missed events.

Events tell a plugin what *changes*; a plugin that was not listening (start-up, a gap, a daemon
restart: see :mod:`circus.plugins.sequence`) needs what *is*. :func:`snapshot_steps` asks
``status`` (every watcher and its state) then ``list`` per watcher (its pids), commands every
Circus daemon answers, 0.19 included.

The steps are written once as a generator that yields ``(command, properties)`` and receives each
reply, so the blocking (``CircusPlugin.snapshot``) and the awaiting
(``AsyncCircusPlugin.snapshot``) flavours drive the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from circus.errors import CallError

Request = tuple[str, dict[str, Any]]
Reply = dict[str, Any]
Steps = Generator[Request, Reply, "Snapshot"]


@dataclass(frozen=True)
class WatcherState:
    """One watcher as the daemon reported it: ``status`` (active, stopped...) and live pids."""

    name: str
    status: str
    pids: tuple[int, ...]


@dataclass(frozen=True)
class Snapshot:
    """Every watcher (plugin watchers included) by name."""

    watchers: dict[str, WatcherState] = field(default_factory=dict)

    def pids(self) -> set[int]:
        """Every live pid of every watcher."""
        return {pid for state in self.watchers.values() for pid in state.pids}


def _checked(reply: Reply, command: str) -> Reply:
    if reply.get("status") == "error":
        raise CallError(f"{command!r} failed: {reply.get('reason', reply)}")
    return reply


def snapshot_steps() -> Steps:
    """The requests of a snapshot, as a generator (see the module docstring)."""
    reply = _checked((yield ("status", {})), "status")
    statuses = reply.get("statuses", {})
    watchers: dict[str, WatcherState] = {}
    for name in sorted(statuses):
        listed = yield ("list", {"name": name})
        if listed.get("status") == "error":  # removed meanwhile: it is not part of the state
            continue
        pids = tuple(int(pid) for pid in listed.get("pids", []))
        watchers[name] = WatcherState(name, str(statuses[name]), pids)
    return Snapshot(watchers)


def run_steps(steps: Steps, call: Callable[[str, dict[str, Any]], Reply]) -> Snapshot:
    """Drive ``steps`` with a blocking ``call(command, props)``."""
    try:
        request = next(steps)
        while True:
            request = steps.send(call(*request))
    except StopIteration as done:
        result: Snapshot = done.value
        return result
