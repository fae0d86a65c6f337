"""Our additions for seeing what runs: ``processes`` (``status -l``) and ``tail`` (``logs``).

Neither exists in Circus 0.19 and no 0.19 reply changes: a 0.19 client never sends them, and a
0.19 daemon answers them with ``unknown command`` (errno 2), which circusctl turns into a hint.
Both answer from memory on the loop: per process one ``oneshot`` psutil read (no scan of
``/proc`` for children, the cost that makes ``stats`` slow) and, for ``tail``, a copy of lines
already held in the rings of :mod:`circus.output_tail`.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from circus.commands.api import ArbiterAPI, ProcessView, WatcherAPI
from circus.commands.base import Command, Fields, Props, QuickCommand, int_prop, watcher_from
from circus.errors import MessageError

#: most lines one ``tail`` reply carries (the rings hold at most ``output_lines`` per slot)
MAX_TAIL_LINES = 100_000
DEFAULT_TAIL_LINES = 10


def _usage(proc: ProcessView, sampled: set[int]) -> dict[str, Any]:
    """cpu % since the previous ``processes`` call (since start on the first), mem %, rss."""
    try:
        handle = proc.psutil_process()
        with handle.oneshot():
            if proc.pid in sampled:
                cpu = handle.cpu_percent(None)
            else:
                handle.cpu_percent(None)  # sets psutil's baseline for the next call
                times = handle.cpu_times()
                age = max(time.time() - handle.create_time(), 1e-3)
                cpu = 100.0 * (times.user + times.system) / age
            return {"cpu": round(cpu, 1), "mem": round(handle.memory_percent(), 2),
                    "rss": handle.memory_info().rss}
    except (psutil.Error, OSError):
        return {"cpu": None, "mem": None, "rss": None}


class Processes(QuickCommand):
    """Every watcher with its state and restart count, and each live process's pid, slot,
    uptime, restarts, cpu and memory (``circusctl status -l``)."""

    name = "processes"

    def __init__(self) -> None:
        #: pids whose cpu baseline is set; pruned to the live ones at each call
        self._sampled: set[int] = set()

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        if props.get("name") is not None:
            watchers = [watcher_from(arbiter, props)]
        else:
            watchers = list(arbiter.watchers)
        now = time.time()
        rows = [self._watcher(w, now) for w in watchers]
        live = {p["pid"] for row in rows for p in row["processes"]}
        self._sampled = live if props.get("name") is None else self._sampled | live
        return {"watchers": rows}

    def _watcher(self, watcher: WatcherAPI, now: float) -> dict[str, Any]:
        journal = watcher.journal
        processes = []
        for proc in sorted(watcher.processes.values(), key=lambda p: p.wid):
            slot = journal.slot(proc.wid)
            processes.append({
                "pid": proc.pid, "wid": proc.wid, "started": proc.started,
                "uptime": max(now - proc.started, 0.0), "restarts": slot.restarts,
                **_usage(proc, self._sampled),
            })
        return {
            "name": watcher.name, "state": watcher.state, "numprocesses": watcher.numprocesses,
            "restarts": journal.restarts,
            "crashes": sum(slot.crashes for slot in journal.slots.values()),
            "processes": processes,
        }


def _names(props: Props) -> list[str] | None:
    names = props.get("names")
    if names is None:
        name = props.get("name")
        return None if name is None else [name]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MessageError("'names' isn't a list of watcher names")
    return names or None


class Tail(QuickCommand):
    """The last ``lines`` output lines of some watchers (all by default), oldest first, and
    each watcher's last line number so that a follower can skip what it already printed."""

    name = "tail"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        count = int_prop(props, "lines", DEFAULT_TAIL_LINES)
        if count is None or count < 0:
            raise MessageError("'lines' must be a positive integer")
        count = min(count, MAX_TAIL_LINES)
        names = _names(props)
        if names is None:
            watchers = list(arbiter.watchers)
        else:
            watchers = [arbiter.get_watcher(name) for name in names]
        pid = int_prop(props, "pid")
        lines: list[dict[str, Any]] = []
        for watcher in watchers:
            wids = None
            if pid is not None:
                proc = watcher.processes.get(pid)
                if proc is None:
                    raise MessageError(f"process {pid} not found in {watcher.name!r}")
                wids = [proc.wid]
            lines.extend({"watcher": watcher.name, **line.as_dict()}
                         for line in watcher.output.recent(count, wids))
        lines.sort(key=lambda line: (line["time"], line["watcher"], line["seq"]))
        return {"lines": lines[-count:] if count else [],
                "seq": {w.name: w.output.seq for w in watchers},
                "capture": {w.name: w.output.limits.capture for w in watchers}}


COMMANDS: tuple[Command, ...] = (Processes(), Tail())
