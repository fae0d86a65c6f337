"""``Board``: what the dashboard shows, kept by the plugin and sent to every page.

Events change it at once (a ``spawn`` adds the pid, a ``reap`` removes it, ``stop``/``start``/
``backoff``/``fatal`` set the state) so a page sees them within one push; details events do
not carry (worker id, restarts, cpu, memory, the ``starting``/``stopping`` states) come from
circusd's ``processes`` reply, which the plugin asks for after events (at most every
``refresh_interval``) and every few seconds. Statistics from the stats stream refresh the cpu and
memory figures in between, and every watcher keeps a bounded cpu/memory history for its chart.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: recent events a newly opened page receives
RECENT_EVENTS = 200
#: one history point per watcher at most this often (seconds)
HISTORY_STEP = 2.0
#: states an event announces (``starting``/``stopping`` have none: the refresh shows them)
STATE_OF_ACTION = {"start": "active", "stop": "stopped", "backoff": "backoff", "fatal": "fatal"}


@dataclass
class WatcherView:
    """One watcher (or plugin) as a page shows it."""

    name: str
    state: str = "unknown"
    numprocesses: int = 0
    restarts: int = 0
    crashes: int = 0
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: deque[tuple[float, float, float]] = field(default_factory=deque)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "plugin": self.name.startswith("plugin:"), "state": self.state,
            "numprocesses": self.numprocesses, "restarts": self.restarts,
            "crashes": self.crashes,
            "processes": sorted(self.processes.values(), key=lambda p: (p.get("wid") or 0,
                                                                         p["pid"])),
        }

    def figures(self) -> tuple[float, float]:
        """Summed cpu % and memory % of the live processes (unknown figures count 0)."""
        cpu = sum(p.get("cpu") or 0.0 for p in self.processes.values())
        mem = sum(p.get("mem") or 0.0 for p in self.processes.values())
        return round(cpu, 2), round(mem, 2)


class Board:
    """Every watcher's view, the recent events and the charts' history."""

    def __init__(self, history: float = 300.0) -> None:
        self.watchers: dict[str, WatcherView] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self.points = max(int(history / HISTORY_STEP), 2)

    def view(self, name: str) -> WatcherView:
        found = self.watchers.get(name)
        if found is None:
            found = self.watchers[name] = WatcherView(name, history=deque(maxlen=self.points))
        return found

    def event(self, name: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply one event; the record pages receive (``name``, ``action``, the payload)."""
        record = {"watcher": name, "action": action, **payload}
        self.events.append(record)
        view = self.view(name)
        pid = payload.get("process_pid")
        if action == "spawn" and isinstance(pid, int):
            started = payload.get("time")
            view.processes.setdefault(pid, {
                "pid": pid, "wid": None, "started": started, "restarts": None,
                "cpu": None, "mem": None, "rss": None,
            })
        elif action == "reap" and isinstance(pid, int):
            view.processes.pop(pid, None)
            if payload.get("expected") is False:
                view.crashes += 1
        elif action == "remove":
            self.watchers.pop(name, None)
        state = STATE_OF_ACTION.get(action)
        if state is not None and name in self.watchers:
            view.state = state
            if state in ("stopped", "fatal"):
                view.processes.clear()
        return record

    def refresh(self, rows: list[dict[str, Any]], complete: bool) -> list[str]:
        """Install a ``processes`` reply; the names of watchers that changed. ``complete``: the
        reply covers every watcher, so those missing from it are gone."""
        changed = []
        seen = set()
        for row in rows:
            name = str(row.get("name"))
            seen.add(name)
            view = self.view(name)
            before = view.as_dict()
            view.state = str(row.get("state", view.state))
            view.numprocesses = int(row.get("numprocesses") or 0)
            view.restarts = int(row.get("restarts") or 0)
            view.crashes = int(row.get("crashes") or 0)
            view.processes = {
                int(p["pid"]): {key: p.get(key) for key in
                                ("pid", "wid", "started", "restarts", "cpu", "mem", "rss")}
                for p in row.get("processes", []) if isinstance(p.get("pid"), int)
            }
            if view.as_dict() != before:
                changed.append(name)
        if complete:
            for name in set(self.watchers) - seen:
                del self.watchers[name]
                changed.append(name)
        return changed

    def stats(self, name: str, pid: int | None, stats: dict[str, Any]) -> bool:
        """A stream sample for one process; whether a figure changed."""
        view = self.watchers.get(name)
        if view is None or pid is None or pid not in view.processes:
            return False
        proc = view.processes[pid]
        before = (proc.get("cpu"), proc.get("mem"))
        for key in ("cpu", "mem"):
            value = stats.get(key)
            proc[key] = round(float(value), 2) if isinstance(value, int | float) else None
        if isinstance(stats.get("mem_info1"), str):
            proc["rss"] = stats["mem_info1"]
        return before != (proc.get("cpu"), proc.get("mem"))

    def sample_history(self, now: float | None = None) -> dict[str, list[float]]:
        """Add a history point to every watcher due one; the new points by watcher."""
        now = time.time() if now is None else now
        added = {}
        for view in self.watchers.values():
            if view.history and now - view.history[-1][0] < HISTORY_STEP:
                continue
            cpu, mem = view.figures()
            view.history.append((round(now, 1), cpu, mem))
            added[view.name] = [round(now, 1), cpu, mem]
        return added

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs when it (re)connects."""
        return {
            "watchers": [view.as_dict() for view in self.watchers.values()],
            "events": list(self.events),
            "history": {view.name: [list(point) for point in view.history]
                        for view in self.watchers.values()},
            "time": time.time(),
        }
