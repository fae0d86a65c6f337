"""What circus-top shows, kept apart from the terminal: one row per process, from three feeds.

* the **stats stream** (``stat.<watcher>.<pid>``, contract 5): cpu, memory, age, every second;
* **snapshots** from the control channel (our ``processes`` command): watcher states, worker
  ids, restart counts, and which pids exist (so a stopped watcher shows, and a reaped process
  goes at once);
* **events** (``watcher.<name>.<action>``): a state change or a spawn/reap shows before the next
  snapshot; the feeds ask for a snapshot when one arrives.

Against a daemon without the ``processes`` command (Circus 0.19) the snapshot falls back to
``status`` (states only) and a row goes when its pid has not been in the stats stream for
``process_timeout`` seconds, as 0.19's circus-top did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from circus.protocol import res_name

#: name of circusd's own rows (``stat.circus.<pid>``)
DAEMON = "circus"
#: seconds after which a row's stats-stream figures give way to a snapshot's
STREAM_STALE = 2.5


@dataclass
class Row:
    """One process (or a watcher without processes: ``pid`` is None)."""

    watcher: str
    pid: int | None
    wid: int | None = None
    state: str = "-"
    cpu: float | None = None
    mem: float | None = None
    rss: str = "-"
    age: float | None = None
    restarts: int | None = None
    #: monotonic time of the last stats message about this pid
    seen: float = 0.0
    #: circusd itself (``stat.circus.<pid>``), not a supervised process
    daemon: bool = False


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# Sort keys: missing figures sort as lowest, ties by watcher then worker id.
SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "name": lambda r: (r.watcher.lower(), r.wid or 0, r.pid or 0),
    "pid": lambda r: r.pid or 0,
    "cpu": lambda r: -1.0 if r.cpu is None else r.cpu,
    "mem": lambda r: -1.0 if r.mem is None else r.mem,
    "age": lambda r: -1.0 if r.age is None else r.age,
    "restarts": lambda r: -1 if r.restarts is None else r.restarts,
    "state": lambda r: r.state,
}


@dataclass
class TopModel:
    """Rows by pid plus the watchers known without processes; see the module docstring."""

    process_timeout: float = 3.0
    rows: dict[int, Row] = field(default_factory=dict)
    #: res_name -> display name, state, restart count (from snapshots and events)
    names: dict[str, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    #: True once a ``processes`` snapshot arrived: pids then come from snapshots and events
    authoritative: bool = False

    # -- feeds ---------------------------------------------------------------------------------

    def on_stat(self, topic: str, payload: Mapping[str, Any], now: float) -> None:
        """One stats stream message; aggregates (``stat.<watcher>``) carry nothing new."""
        parts = topic.split(".")
        if len(parts) != 3 or parts[1] == "sockets":
            return
        try:
            pid = int(parts[2])
        except ValueError:
            return
        name = parts[1]
        row = self.rows.get(pid)
        if row is None:
            if self.authoritative and name != DAEMON:
                return  # a pid the last snapshot did not have: reaped since, or not yet known
            row = self.rows[pid] = Row(watcher=self.names.get(name, name), pid=pid)
            if name == DAEMON:
                row.watcher = str(payload.get("name") or DAEMON)
                row.state = "active"
                row.daemon = True
        row.cpu = _number(payload.get("cpu"))
        row.mem = _number(payload.get("mem"))
        row.rss = str(payload.get("mem_info1", "-"))
        row.age = _number(payload.get("age"))
        row.seen = now
        if name in self.states and not row.daemon:
            row.state = self.states[name]

    def on_processes(self, reply: Mapping[str, Any], now: float) -> None:
        """A ``processes`` snapshot: the authority on which pids and watchers exist; its
        figures are used for processes the stats stream has not mentioned lately."""
        self.authoritative = True
        live: set[int] = set()
        self.names.clear()
        for watcher in reply.get("watchers") or []:
            name = str(watcher["name"])
            key = res_name(name)
            self.names[key] = name
            self.states[key] = str(watcher.get("state", "-"))
            self.restarts[key] = int(watcher.get("restarts") or 0)
            for proc in watcher.get("processes") or []:
                pid = int(proc["pid"])
                live.add(pid)
                row = self.rows.get(pid)
                if row is None:
                    row = self.rows[pid] = Row(watcher=name, pid=pid)
                if now - row.seen > STREAM_STALE:  # no stats stream (statsd = false): use these
                    row.cpu = _number(proc.get("cpu"))
                    row.mem = _number(proc.get("mem"))
                    row.rss = str(proc.get("rss", "-"))
                    row.age = _number(proc.get("uptime"))
                row.watcher = name
                row.wid = int(proc["wid"])
                row.state = self.states[key]
                row.restarts = int(proc.get("restarts") or 0)
        for pid, row in list(self.rows.items()):
            if pid not in live and not row.daemon:
                del self.rows[pid]
        for key in set(self.states) - set(self.names):
            del self.states[key]
            self.restarts.pop(key, None)

    def on_statuses(self, statuses: Mapping[str, Any]) -> None:
        """A 0.19 ``status`` reply (no ``processes`` command): states only."""
        for name, state in statuses.items():
            key = res_name(str(name))
            self.names[key] = str(name)
            self.states[key] = str(state)
        for row in self.rows.values():
            key = res_name(row.watcher)
            if key in self.states:
                row.state = self.states[key]

    def on_event(self, topic: str, payload: Mapping[str, Any]) -> None:
        """A ``watcher.<name>.<action>`` event: state changes and reaps show at once."""
        parts = topic.split(".")
        if len(parts) < 3:
            return
        key, action = ".".join(parts[1:-1]), parts[-1]
        new_state = {"start": "active", "stop": "stopped"}.get(action)
        if new_state is not None:
            self.states[key] = new_state
            for row in self.rows.values():
                if res_name(row.watcher) == key:
                    row.state = new_state
        elif action == "reap":
            pid = payload.get("process_pid")
            if isinstance(pid, int):
                self.rows.pop(pid, None)
        elif action == "remove":
            self.names.pop(key, None)
            self.states.pop(key, None)
            for pid in [p for p, r in self.rows.items() if res_name(r.watcher) == key]:
                del self.rows[pid]

    def expire(self, now: float) -> None:
        """Without snapshots, drop rows the stats stream stopped mentioning (0.19's rule)."""
        if self.authoritative:
            return
        for pid, row in list(self.rows.items()):
            if row.seen and now - row.seen > self.process_timeout:
                del self.rows[pid]

    # -- view ----------------------------------------------------------------------------------

    def view(self, sort: str = "cpu", reverse: bool = True, text: str = "") -> list[Row]:
        """Rows to show: processes plus one per watcher without any, filtered and sorted.

        ``text`` keeps rows whose watcher name, state or pid contains it (case-insensitive).
        """
        rows = list(self.rows.values())
        shown = {res_name(r.watcher) for r in rows}
        for key, state in self.states.items():
            if key not in shown:
                rows.append(Row(watcher=self.names.get(key, key), pid=None, state=state,
                                restarts=self.restarts.get(key)))
        needle = text.strip().lower()
        if needle:
            rows = [r for r in rows if needle in r.watcher.lower() or needle in r.state
                    or (r.pid is not None and needle in str(r.pid))]
        rows.sort(key=SORT_KEYS["name"])
        rows.sort(key=SORT_KEYS[sort], reverse=reverse)
        return rows

    def totals(self) -> tuple[int, int]:
        """(watchers, processes), circusd itself not counted."""
        procs = sum(1 for r in self.rows.values() if not r.daemon)
        watchers = len(self.states) or len({r.watcher for r in self.rows.values() if not r.daemon})
        return watchers, procs
